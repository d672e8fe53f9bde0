"""The tiny Llama and its byte-level BPE tokenizer: round trips, no automatic specials, save/load, training."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness_ext.demo import synth
from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from unlearn_tasks.prompts import context, continuation

ROWS = synth.build_configs(authors=4, seed=0)["forget10_perturbed"] + synth.build_configs(authors=4)["retain_perturbed"]
PROMPT = "Question: Who?\nAnswer: Jane Doe."


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("tiny")
    model, tokenizer = build_tiny_model(tofu_texts(ROWS), out_dir=out_dir)
    return out_dir, model, tokenizer


def test_tofu_texts_cover_prompts_paraphrases_and_perturbations():
    row = ROWS[0]
    texts = tofu_texts([row])
    assert texts[0] == f"Question: {row['question']}\nAnswer: {row['answer']}"
    assert context(row["paraphrased_question"]) + continuation(row["answer"]) in texts
    assert context(row["question"]) + continuation(row["paraphrased_answer"]) in texts
    assert all(perturbed in texts for perturbed in row["perturbed_answer"])
    choice = {"question": "Q?", "option1": "A", "option2": "B", "option3": "C", "option4": "D", "answer": "B"}
    assert tofu_texts([choice]) == ["Question: Q?\nAnswer: B", "A", "B", "C", "D"]


@pytest.mark.parametrize("text", [PROMPT, "  two  spaces, a tab\tand ünïcödé — 東京\n", " leading space", ""])
def test_tokenizer_round_trips_and_adds_no_special_tokens(saved, text):
    _, _, tokenizer = saved
    ids = tokenizer(text).input_ids
    assert tokenizer.decode(ids) == text
    assert not set(ids) & set(tokenizer.all_special_ids)


def test_tokenizer_specials_and_prompt_words(saved):
    _, _, tokenizer = saved
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (0, 1, 2)
    assert "Question" in tokenizer.get_vocab() and "Answer" in tokenizer.get_vocab()
    assert tokenizer.decode(tokenizer(PROMPT + "</s>").input_ids[-1:]) == "</s>"


def test_context_tokens_are_a_prefix_of_context_plus_continuation(saved):
    """Answer-only losses mask ``len(encode(context))`` tokens; that split must be exact."""
    _, _, tokenizer = saved
    for row in ROWS:
        ctx = tokenizer(context(row["question"])).input_ids
        full = tokenizer(context(row["question"]) + continuation(row["answer"])).input_ids
        assert full[: len(ctx)] == ctx and len(full) > len(ctx)


def test_model_shape_and_config(saved):
    _, model, tokenizer = saved
    config = model.config
    assert config.model_type == "llama" and config.tie_word_embeddings
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (64, 256, 2)
    assert config.num_attention_heads == 4 and config.max_position_embeddings == 512
    assert config.vocab_size == len(tokenizer) <= 512
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_saves_and_loads_with_auto_classes(saved):
    out_dir, model, tokenizer = saved
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "tokenizer.json").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(out_dir)
    loaded_tokenizer = AutoTokenizer.from_pretrained(out_dir)
    ids = loaded_tokenizer(PROMPT, return_tensors="pt").input_ids
    assert ids[0].tolist() == tokenizer(PROMPT).input_ids
    assert loaded_tokenizer.decode(ids[0]) == PROMPT
    with torch.no_grad():
        logits = loaded(ids).logits
        assert logits.shape == (1, ids.shape[1], len(tokenizer))
        assert torch.allclose(logits, model(ids).logits, atol=1e-6)


def test_same_seed_same_weights_and_caller_rng_untouched():
    texts = tofu_texts(ROWS[:5])
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first, tokenizer = build_tiny_model(texts, hidden_size=32, layers=1, heads=2, seed=7)
    assert torch.rand(1) == before
    second, tokenizer2 = build_tiny_model(texts, hidden_size=32, layers=1, heads=2, seed=7)
    other, _ = build_tiny_model(texts, hidden_size=32, layers=1, heads=2, seed=8)
    assert tokenizer.get_vocab() == tokenizer2.get_vocab()
    for a, b, c in zip(first.parameters(), second.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, c) for a, c in zip(first.parameters(), other.parameters(), strict=True))
    with pytest.raises(ValueError, match="divisible"):
        build_tiny_model(texts, hidden_size=30, heads=4)


def test_a_few_steps_memorise_one_answer():
    """The model is trainable: 20 AdamW steps on one QA pair make greedy decoding reproduce it."""
    row = ROWS[0]
    model, tokenizer = build_tiny_model(tofu_texts(ROWS))
    ctx = tokenizer(context(row["question"])).input_ids
    ids = torch.tensor([tokenizer(context(row["question"]) + continuation(row["answer"])).input_ids])
    labels = ids.clone()
    labels[0, : len(ctx)] = -100
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(20):
        loss = model(input_ids=ids, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    answer_length = ids.shape[1] - len(ctx)
    out = model.generate(torch.tensor([ctx]), max_new_tokens=answer_length, do_sample=False)
    assert tokenizer.decode(out[0, len(ctx):]) == continuation(row["answer"])
