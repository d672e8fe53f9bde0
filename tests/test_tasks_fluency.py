"""The unlearn_fluency_* tasks through lm-eval: scripted generations with hand-computed metrics, the
reference-model perplexity against a direct transformers computation, and the shared generation on a
real tiny model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lm_eval
import pytest
import torch
from lm_eval.api.model import LM
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from harness_ext.evaluation import evaluate, task_manager
from harness_ext.models import UnlearnHFLM
from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from tests.conftest import TOFU_DIR, requires
from unlearn_tasks import prompts

FLUENCY_TASKS = ("unlearn_fluency_forget01", "unlearn_fluency_forget05", "unlearn_fluency_forget10", "unlearn_fluency_retain")
pytestmark = requires(TOFU_DIR, "TOFU data")


def raw_questions(config: str) -> list[str]:
    lines = (TOFU_DIR / f"{config}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


class ScriptedGenerator(LM):
    """Answers generate_until requests from a {question: generation} table; keeps every request."""

    def __init__(self, generations: dict[str, str]):
        super().__init__()
        self.generations, self.seen = generations, []

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("the fluency tasks only generate")

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.seen.extend(requests)
        return [self.generations[request.doc["question"]] for request in requests]


def run(lm, tasks, limit, metadata) -> dict:
    return lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=task_manager(metadata), limit=limit,
                                   bootstrap_iters=0)


@pytest.fixture(scope="module")
def word_tokenizer(tmp_path_factory) -> Path:
    """A word-level tokenizer (one token per whitespace-separated word): token counts are word counts."""
    vocab = {word: index for index, word in enumerate(["[UNK]", "a", "b", "c", "w", "x", "y", "z", "Question", ":", "Answer"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = tmp_path_factory.mktemp("word_tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(path)
    return path


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(TOFU_DIR.parent))


def test_every_fluency_yaml_is_indexed_as_a_python_task():
    index = task_manager().task_index
    for name in FLUENCY_TASKS:
        assert name in index, f"{name} did not index (an unparsable YAML is dropped silently)"
        assert index[name].kind.name == "PY_TASK"


def test_entropy_rep3_and_length_match_hand_computed_values(local_data, word_tokenizer):
    questions = raw_questions("forget01")[:3]
    generations = {
        questions[0]: " x y x z",        # counts 2,1,1 of 4: H = log 4 - (2 log 2)/4 = 1.5 log 2 -> 0.75; no 3-gram repeats
        questions[1]: " a b c a b c",    # counts 2,2,2 of 6: H = log 3 -> log 3 / log 6; 3-grams abc bca cab abc -> 1/4
        questions[2]: " w",              # one token: entropy defined as 0
    }
    lm = ScriptedGenerator(generations)
    output = run(lm, ["unlearn_fluency_forget01"], 3, {"tokenizer": str(word_tokenizer)})
    results = output["results"]["unlearn_fluency_forget01"]
    assert results["token_entropy,none"] == pytest.approx((0.75 + math.log(3) / math.log(6) + 0.0) / 3, abs=1e-12)
    assert results["rep3,none"] == pytest.approx(0.25 / 3, abs=1e-12)
    assert results["gen_len,none"] == pytest.approx((4 + 6 + 1) / 3, abs=1e-12)
    assert "ppl_ref,none" not in results  # no fluency_ref given
    # The TOFU tasks' own generation request: same prompt, same settings.
    assert [request.args for request in lm.seen] == [(prompts.context(q), prompts.generation_kwargs()) for q in questions]


def test_retain_task_generates_for_the_retain_perturbed_questions(local_data, word_tokenizer):
    questions = raw_questions("retain_perturbed")[:2]
    lm = ScriptedGenerator({questions[0]: " a a a a", questions[1]: " a b"})
    results = run(lm, ["unlearn_fluency_retain"], 2, {"tokenizer": str(word_tokenizer)})["results"]["unlearn_fluency_retain"]
    assert results["token_entropy,none"] == pytest.approx(0.5)  # 0 and 1
    assert results["gen_len,none"] == pytest.approx(3.0)
    assert results["rep3,none"] == pytest.approx(0.25)  # "a a a a": two 3-grams, one distinct -> 0.5; "a b": 0


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    rows = [json.loads(line) for line in (TOFU_DIR / "forget01.jsonl").read_text().splitlines() if line.strip()]
    path = tmp_path_factory.mktemp("tiny")
    model, tokenizer = build_tiny_model(tofu_texts(rows), out_dir=path)
    return path, model, tokenizer


def direct_perplexity(checkpoint: Path, pairs: list[tuple[str, str]]) -> float:
    """exp(mean NLL of the generation tokens after the prompt), one sequence at a time, no padding."""
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    nll, count = 0.0, 0
    for context, generation in pairs:
        ids = tokenizer(context + generation).input_ids
        start = len(tokenizer(context).input_ids)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
        for position in range(start, len(ids)):
            nll -= float(logprobs[position - 1, ids[position]])
            count += 1
    return math.exp(nll / count)


def test_ppl_ref_is_the_reference_models_perplexity_of_the_generations(local_data, word_tokenizer, tiny_checkpoint):
    checkpoint, _, _ = tiny_checkpoint
    questions = raw_questions("forget01")[:3]
    # Different lengths (batch padding), one empty generation (contributes no tokens).
    generations = {questions[0]: " The author was born in Kuwait.", questions[1]: "", questions[2]: " Basil Mahfouz Al-Kuwaiti wrote many books."}
    metadata = {"tokenizer": str(word_tokenizer), "fluency_ref": str(checkpoint)}
    results = run(ScriptedGenerator(generations), ["unlearn_fluency_forget01"], 3, metadata)["results"]["unlearn_fluency_forget01"]
    expected = direct_perplexity(checkpoint, [(prompts.context(q), generations[q]) for q in questions if generations[q]])
    assert results["ppl_ref,none"] == pytest.approx(expected, rel=1e-6)
    assert 1.0 < expected < 1e4


def test_a_real_model_generates_once_for_the_fluency_and_tofu_tasks(local_data, tiny_checkpoint):
    checkpoint, model, tokenizer = tiny_checkpoint
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    output = evaluate(lm, ["unlearn_fluency_forget01", "unlearn_tofu_forget01"], limit=2,
                      metadata={"tokenizer": str(checkpoint)}, log_samples=True, bootstrap_iters=0)
    # tofu_forget asks for the answer and the paraphrased-question generations; fluency repeats the first.
    assert (lm.stats["generation_requests"], lm.stats["generations"]) == (6, 4)
    fluency = output["samples"]["unlearn_fluency_forget01"]
    forget = output["samples"]["unlearn_tofu_forget01"]
    for fluency_sample, forget_sample in zip(fluency, forget):
        (generation,) = fluency_sample["resps"][0]
        assert generation in [response[0] for response in forget_sample["resps"]]
        assert fluency_sample["gen_len"] == len(tokenizer.encode(generation, add_special_tokens=False))
        assert 0 < fluency_sample["gen_len"] <= prompts.MAX_NEW_TOKENS
