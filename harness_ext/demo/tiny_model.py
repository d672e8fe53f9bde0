"""A tiny randomly initialised Llama and its byte-level BPE tokenizer, trained on the task's own texts.

For tests and CPU experiments: fine-tuning it on a few hundred TOFU-format QA pairs memorises them
in a minute on two cores (numbers in docs/synthetic.md), so unlearning can be exercised end to end.

The tokenizer is byte-level BPE like GPT-2 and SmolLM2: any text encodes (no unknown token),
``decode(encode(text)) == text`` exactly (spaces included), and **no special token is added
automatically** — ``tokenizer("x").input_ids`` has no ``<s>``; callers that want BOS/EOS add them.
Special tokens: ``<s>`` (bos), ``</s>`` (eos), ``<pad>`` (pad), ids 0, 1, 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerFast

from unlearn_tasks.prompts import context, continuation

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (BOS, EOS, PAD)
MAX_POSITIONS = 512
# Always in the tokenizer's training texts, so the prompt words get their own tokens.
PROMPT_TEXTS = (context("Who?") + continuation("Yes."), "Question: Answer:")


def tofu_texts(rows: Iterable[dict]) -> list[str]:
    """Texts to train a tokenizer on, from TOFU-format rows of any config.

    Each question/answer pair as the prompt shows it (``Question: q\\nAnswer: a``), the paraphrased
    question and answer, each perturbed answer, and multiple-choice options when present.
    """
    texts = []
    for row in rows:
        question, answer = row["question"], str(row["answer"])
        texts.append(context(question) + continuation(answer))
        if "paraphrased_question" in row:
            texts.append(context(row["paraphrased_question"]) + continuation(answer))
        if "paraphrased_answer" in row:
            texts.append(context(question) + continuation(row["paraphrased_answer"]))
        texts.extend(str(perturbed) for perturbed in row.get("perturbed_answer", ()))
        texts.extend(str(row[key]) for key in sorted(row) if key.startswith("option"))
    return texts


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts`` (plus :data:`PROMPT_TEXTS`); no automatic specials."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([*PROMPT_TEXTS, *texts], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
    )


def tiny_llama_config(tokenizer: PreTrainedTokenizerFast, hidden_size: int, layers: int, heads: int) -> LlamaConfig:
    """Llama with tied embeddings, feed-forward width 4 × hidden, 512 positions, the tokenizer's specials."""
    if hidden_size % heads:
        raise ValueError(f"hidden_size={hidden_size} must be divisible by heads={heads}")
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_model(
    texts: Iterable[str],
    out_dir: Path | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Train a tokenizer on ``texts`` and build a randomly initialised ``LlamaForCausalLM`` for it.

    Initialisation is ``torch.manual_seed(seed)`` inside a forked RNG (the caller's RNG state is left
    alone), so the same texts and seed give the same weights. With ``out_dir``, both are saved with
    ``save_pretrained`` (safetensors) and load back with ``AutoModelForCausalLM``/``AutoTokenizer``.
    """
    tokenizer = train_tokenizer(texts, vocab_size)
    config = tiny_llama_config(tokenizer, hidden_size, layers, heads)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return model, tokenizer
