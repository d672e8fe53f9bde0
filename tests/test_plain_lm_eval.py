"""Plain lm-eval (lm-eval's own HF model, no per-token details) on the TOFU tasks always completes.

The model is the demo's kind: a tiny Llama with a 512-entry byte-level BPE vocabulary, where
whitespace-only tokens are common and lm-eval's whitespace handling merges per-token requests (the
documents that used to abort the run). Every key must equal `unlearn-bench eval`'s (unlearn_hf).
"""

from __future__ import annotations

import logging
import math

import pytest
from transformers import AutoTokenizer

from tests.conftest import TOFU_DIR, requires
from unlearn_tasks import prompts
from unlearn_tasks.scoring import _per_token_scores, exact_memorization, extraction_strength
from unlearn_tasks.tokenization import LmEvalTokenization, TokenRequests

TASK = "unlearn_tofu_forget01"
TRAINED = 4  # the model memorises forget01's first documents
DOCS = [2, 3, 4, 5]  # two memorised, two not
MATCH_KEYS = ("es", "em", "es_para")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def byte_model(tmp_path_factory, tofu_data_dir):
    """A 512-token byte-level tiny Llama that memorised the first documents (so matches vary)."""
    import tests.memorised as memorised
    from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
    from unlearn_tasks.tofu.data import load_tofu

    rows = list(load_tofu("forget01_perturbed"))
    model, tokenizer = build_tiny_model(tofu_texts(rows), vocab_size=512, seed=0)
    memorised._train(model, tokenizer, rows[:TRAINED], seed=0)
    folder = tmp_path_factory.mktemp("byte512")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _plain(folder, samples):
    from lm_eval.models.huggingface import HFLM

    from harness_ext.evaluation import evaluate

    lm = HFLM(pretrained=str(folder), batch_size=8, device="cpu")
    return evaluate(lm, [TASK], samples={TASK: samples}, metadata={"pretrained": str(folder)})["results"][TASK]


def test_plain_lm_eval_equals_unlearn_bench_eval(byte_model):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    tokenization = LmEvalTokenization(AutoTokenizer.from_pretrained(byte_model))
    doc = list(_forget_rows())[DOCS[0]]
    requests = tokenization.token_requests(prompts.context(doc["question"]), prompts.continuation(doc["answer"]))
    assert requests.probes, "precondition: lm-eval merges some per-token requests on this tokenizer"

    plain = _plain(byte_model, DOCS)
    lm = UnlearnHFLM(pretrained=str(byte_model), batch_size=8, device="cpu")
    detailed = evaluate(lm, [TASK], samples={TASK: DOCS})["results"][TASK]
    assert 0 < detailed["em,none"] < 1, "precondition: the model matches some tokens, not all"
    for key in MATCH_KEYS:
        assert not math.isnan(plain[f"{key},none"]), key
    for key, value in detailed.items():
        if key.endswith(",none") and key != "forget_quality,none":
            assert plain[key] == pytest.approx(value, abs=1e-4), key


def test_unknown_matches_are_nan_with_one_warning(byte_model, monkeypatch, caplog):
    """Without the probes, matches after a mispredicted merged token are unknown: those keys (only)
    become NaN, with one warning naming the documents and `unlearn-bench eval`."""
    monkeypatch.setattr(LmEvalTokenization, "_probe", lambda *args: None)
    with caplog.at_level(logging.WARNING, logger="unlearn_tasks"):
        plain = _plain(byte_model, DOCS[1:3])
    nan_keys = {key for key, value in plain.items() if key.endswith(",none") and "_stderr" not in key and _is_nan(value)}
    assert nan_keys & {f"{key},none" for key in MATCH_KEYS}
    assert nan_keys <= {f"{key},none" for key in MATCH_KEYS} | {"forget_quality,none"}
    warnings = [r.getMessage() for r in caplog.records if "greedy matches are unknown" in r.getMessage()]
    assert len(warnings) == 1
    assert "forget[3]" in warnings[0] or "forget[4]" in warnings[0]
    assert "unlearn-bench eval" in warnings[0]


@pytest.mark.slow
def test_plain_lm_eval_equals_unlearn_bench_eval_on_smollm2(smollm2, tofu_data_dir):
    """The real pretrained SmolLM2-135M-Instruct, all 40 forget01 documents."""
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    documents = list(range(40))
    plain = _plain(smollm2, documents)
    lm = UnlearnHFLM(pretrained=str(smollm2), dtype="float32", batch_size=8, device="cpu")
    detailed = evaluate(lm, [TASK], samples={TASK: documents})["results"][TASK]
    for key, value in detailed.items():
        if key.endswith(",none") and key != "forget_quality,none":
            assert plain[key] == pytest.approx(value, abs=1e-4), key


@pytest.mark.slow
def test_plain_lm_eval_cli_completes(byte_model, tofu_data_dir, tmp_path):
    """The command from the issue, as a user types it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command = [str(Path(sys.executable).parent / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={byte_model}",
               "--device", "cpu", "--include_path", str(root / "tasks"), "--tasks", TASK, "--limit", "4",
               "--batch_size", "8", "--output_path", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = tmp_path.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"][TASK]
    for key in MATCH_KEYS:
        assert not math.isnan(results[f"{key},none"]), key


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _forget_rows():
    from unlearn_tasks.tofu.data import load_tofu

    return load_tofu("forget01_perturbed")


# --- unit checks, no model --------------------------------------------------------------------


def test_extraction_strength_with_unknown_matches():
    # ES depends only on the last mismatch: unknowns before it do not matter
    assert extraction_strength([True, None, False, True]) == 0.25
    assert math.isnan(extraction_strength([False, None, True]))  # ES is 1/3 or 2/3
    assert extraction_strength([False, True, True]) == pytest.approx(2 / 3)
    # open-unlearning's floor: suffix 0 or 1 both give 1/T
    assert extraction_strength([True, False, None], floor_one_token=True) == pytest.approx(1 / 3)
    assert math.isnan(extraction_strength([True, False, None]))


def test_exact_memorization_with_unknown_matches():
    assert exact_memorization([True, False, True, True]) == 0.75
    assert math.isnan(exact_memorization([True, None]))


def test_per_token_scores_use_probes_only_when_the_merged_request_cannot_tell():
    # token 2's request scores tokens 1..2 (merged); token 1 was mispredicted
    responses = [(-0.5, True), (-1.0, False), (-3.0, False), (-0.25, True)]
    requests = TokenRequests([("", "")] * 4, starts=[0, 1, 1, 3], ends=[0, 1, 2, 3])
    scores = _per_token_scores(responses, requests, {2: True})
    assert scores.logprobs == [-0.5, -1.0, -2.0, -0.25]
    assert scores.greedy == [True, False, True, True]
    assert scores.exact_tokens
    assert _per_token_scores(responses, requests, {}).greedy == [True, False, None, True]
    # when the merged request's earlier token matched, its is_greedy decides (the probe is not needed)
    matched = [(-0.5, True), (-1.0, True), (-3.0, False), (-0.25, True)]
    assert _per_token_scores(matched, requests, {2: True}).greedy == [True, True, False, True]


def test_per_token_scores_of_a_group_inside_one_character():
    # tokens 1 and 2 are the two bytes of one character: one request scores both
    requests = TokenRequests([("", "")] * 3, starts=[0, 1, 3], ends=[0, 2, 3])
    scores = _per_token_scores([(-0.5, True), (-3.0, False), (-0.25, True)], requests, {})
    assert scores.logprobs == [-0.5, -1.5, -1.5, -0.25]
    assert scores.greedy == [True, None, None, True]
    assert not scores.exact_tokens
    assert _per_token_scores([(-0.5, True), (-3.0, True), (-0.25, False)], requests, {}).greedy == [True] * 3 + [False]


@pytest.fixture(scope="module")
def byte_tokenizer(tofu_data_dir):
    from harness_ext.demo.tiny_model import tofu_texts, train_tokenizer

    return train_tokenizer(tofu_texts(_forget_rows()), vocab_size=512)


def test_requests_group_tokens_inside_a_character_and_probe_whole_ones(byte_tokenizer):
    tokenization = LmEvalTokenization(byte_tokenizer)
    context, continuation = "Question: Who?\nAnswer:", " Né  à Genève"
    requests = tokenization.token_requests(context, continuation)
    context_tokens, tokens = tokenization.split(context, continuation)
    texts = [byte_tokenizer.decode([t]) for t in tokens]
    inside = [t for t, text in enumerate(texts) if "\ufffd" in text and t + 1 < len(texts) and "\ufffd" in texts[t + 1]]
    assert inside, "precondition: a character is split into several tokens"
    assert requests.ends[-1] == len(tokens) - 1
    assert not set(inside) & set(requests.ends), "no request ends inside a character"
    assert requests.probes, "precondition: some merged tokens can be probed"
    for position, (prefix, expected) in requests.probes.items():
        assert "\ufffd" not in expected
        assert tokenization.encode(prefix) == context_tokens + tokens[:position]
        assert expected == texts[position]
