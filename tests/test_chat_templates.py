"""Chat templates the lm-eval way: --apply_chat_template, --system_instruction, a pinned date, and
open-unlearning's instruct-model prompts, seen in what lm-eval logs for the first TOFU question.

The model is a tiny random Llama (the prompts, not the numbers, are under test) with SmolLM2-Instruct's
tokenizer and chat template, or a byte-level tokenizer with a template that prints today's date.
"""

from __future__ import annotations

import datetime
import math

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from tests.conftest import TOFU_DIR, requires
from unlearn_tasks.tokenization import LmEvalTokenization

pytestmark = [requires(TOFU_DIR, "TOFU data"), pytest.mark.usefixtures("one_torch_thread")]
TASK = "unlearn_tofu_forget01"
DATE_TEMPLATE = (
    "{% if not date_string is defined %}{% set date_string = strftime_now('%d %b %Y') %}{% endif %}"
    "<s>Today Date: {{ date_string }}\n{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]\n{% endif %}"
)


def _save_tiny(folder, tokenizer):
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def smollm2_chat(smollm2, tmp_path_factory):
    """SmolLM2-Instruct's tokenizer and chat template on a tiny random model."""
    return _save_tiny(tmp_path_factory.mktemp("smol-chat"), AutoTokenizer.from_pretrained(smollm2))


@pytest.fixture(scope="module")
def dated_chat(tofu_data_dir, tmp_path_factory):
    """A byte-level tokenizer whose chat template prints today's date unless ``date_string`` is given."""
    from harness_ext.demo.tiny_model import tofu_texts, train_tokenizer
    from unlearn_tasks.tofu.data import load_tofu

    tokenizer = train_tokenizer(tofu_texts(list(load_tofu("forget01_perturbed"))), vocab_size=512)
    tokenizer.chat_template = DATE_TEMPLATE
    return _save_tiny(tmp_path_factory.mktemp("dated-chat"), tokenizer)


def _run(folder, metadata=None, **options):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    lm = UnlearnHFLM(pretrained=str(folder), batch_size=8, device="cpu")
    run = evaluate(lm, [TASK], samples={TASK: [0]}, metadata=metadata, log_samples=True, env_info=False, **options)
    (sample,) = run["samples"][TASK]
    return run, sample


def _logged(sample, kind):
    """The (context, continuation-or-kwargs) of every logged request of one kind, in order."""
    return [tuple(arguments) for arguments, request in zip(sample["arguments"], _kinds(sample)) if request == kind]


def _kinds(sample):
    return ["generate_until" if isinstance(a[1], dict) else "loglikelihood" for a in sample["arguments"]]


def test_smollm2_template_and_system_instruction_reach_every_prompt(smollm2_chat, tofu_data_dir):
    from unlearn_tasks.tofu.data import load_tofu

    doc = load_tofu("forget01_perturbed")[0]
    tokenizer = AutoTokenizer.from_pretrained(smollm2_chat)
    run, sample = _run(smollm2_chat, apply_chat_template=True, system_instruction="Answer briefly.")
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": f"Question: {doc['question']}\nAnswer:"}],
        tokenize=False, add_generation_prompt=True,
    )
    contexts = {context for context, _ in _logged(sample, "loglikelihood")}
    assert expected in contexts
    assert len(contexts) == 2  # the question and the paraphrased question, rendered the same way
    assert all(c.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>") for c in contexts)
    assert (expected, doc["answer"]) in _logged(sample, "loglikelihood")
    assert expected in [context for context, _ in _logged(sample, "generate_until")]
    scored = sample["answer_tokens"]
    assert scored["context"] == scored["generation_prompt"] == expected
    assert scored["continuation"] == doc["answer"]
    tokens = LmEvalTokenization(tokenizer).split(expected, doc["answer"])[1]
    start, stop = scored["prob_labels"]
    assert tokenizer.decode(tokens[start:stop]) == doc["answer"]  # the generation prompt's newline is not scored
    assert run["configs"][TASK]["metadata"]["date_string"] == "10 Apr 2025"


def test_open_unlearning_convention_reproduces_its_instruct_prompts(smollm2_chat, tofu_data_dir):
    """Their preprocess_chat_instance: system prompt, user = the question, labels = the rendered
    conversation's tokens after the generation prompt, plus EOS when it does not end with EOS."""
    from unlearn_tasks.tofu.data import load_tofu

    doc = load_tofu("forget01_perturbed")[0]
    tokenizer = AutoTokenizer.from_pretrained(smollm2_chat)
    chat = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": doc["question"]}]
    prompt_ids = tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=True, return_dict=False)
    chat_ids = tokenizer.apply_chat_template([*chat, {"role": "assistant", "content": doc["answer"]}],
                                             tokenize=True, add_generation_prompt=False, return_dict=False)
    labels = chat_ids[len(prompt_ids):] + ([] if chat_ids[-1] == tokenizer.eos_token_id else [tokenizer.eos_token_id])

    _, sample = _run(smollm2_chat, metadata={"convention": "open-unlearning"}, apply_chat_template=True)
    scored = sample["answer_tokens"]
    assert scored["context"] == tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert scored["generation_prompt"] == scored["context"]
    tokens = LmEvalTokenization(tokenizer).split(scored["context"], scored["continuation"])[1]
    start, stop = scored["prob_labels"]
    assert tokens[start:stop] == labels
    assert scored["es_em_labels"] == [start, stop - 1]


def test_pinned_date_gives_identical_results_on_two_days(dated_chat, monkeypatch):
    from transformers.utils import chat_template_utils

    def on(day):
        class Today(datetime.datetime):
            @classmethod
            def now(cls, tz=None):
                return day

        monkeypatch.setattr(chat_template_utils, "datetime", Today)
        return _run(dated_chat, apply_chat_template=True)

    first, first_sample = on(datetime.datetime(2031, 1, 2))
    second, second_sample = on(datetime.datetime(2032, 3, 4))
    assert "Today Date: 10 Apr 2025" in first_sample["answer_tokens"]["context"]
    assert first_sample["arguments"] == second_sample["arguments"]
    for key, value in first["results"][TASK].items():
        same = value == second["results"][TASK][key] or (isinstance(value, float) and math.isnan(value))
        assert same, key
    # without the pin, this template renders the day it runs on: the test above could fail
    rendered = AutoTokenizer.from_pretrained(dated_chat).apply_chat_template([{"role": "user", "content": "?"}], tokenize=False)
    assert "Today Date: 04 Mar 2032" in rendered


def test_date_string_metadata_sets_the_date_and_bad_dates_are_one_error(dated_chat):
    run, sample = _run(dated_chat, metadata={"date_string": "26 Jul 2024"}, apply_chat_template=True)
    assert "Today Date: 26 Jul 2024" in sample["answer_tokens"]["context"]
    assert run["configs"][TASK]["metadata"]["date_string"] == "26 Jul 2024"
    with pytest.raises(ValueError, match="date_string"):
        _run(dated_chat, metadata={"date_string": "2024-07-26"}, apply_chat_template=True)


def test_plain_prompt_is_unchanged_without_a_chat_template(dated_chat, tofu_data_dir):
    from unlearn_tasks.tofu.data import load_tofu

    doc = load_tofu("forget01_perturbed")[0]
    _, sample = _run(dated_chat)
    assert (f"Question: {doc['question']}\nAnswer:", " " + doc["answer"]) in _logged(sample, "loglikelihood")
    assert sample["answer_tokens"]["prob_labels"][0] == 0


def test_pinned_renderer_freezes_the_clock_only_while_rendering():
    from transformers.utils import chat_template_utils

    from unlearn_tasks import chat

    original = chat_template_utils.datetime
    seen = []
    render = chat.pinned_date(lambda messages, **kwargs: seen.append(chat_template_utils.datetime.now()) or "x", "26 Jul 2024")
    assert render([{"role": "user", "content": "?"}], add_generation_prompt=True) == "x"
    assert seen == [datetime.datetime(2024, 7, 26)]
    assert chat_template_utils.datetime is original
