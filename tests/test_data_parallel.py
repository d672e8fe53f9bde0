"""Data-parallel evaluation: `accelerate launch --num_processes 2 -m harness_ext.cli eval` on CPU (gloo)
scores each document once, in one of the processes, and reports the numbers of a single process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

TASKS = "unlearn_tofu_forget01,unlearn_tofu_mia_forget01"
LIMIT = 6
# with ACCELERATE_USE_CPU=1 (set in _eval), --multi_gpu is accelerate's multi-CPU mode (gloo); `--cpu` alone starts one process
TWO_CPU_PROCESSES = ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                     "--dynamo_backend", "no", "--main_process_port", "0"]


def _eval(model, out, launcher: list[str]) -> str:
    command = [*launcher, "-m", "harness_ext.cli", "eval", "--model", "hf",
               "--model_args", f"pretrained={model},dtype=float32", "--tasks", TASKS, "--limit", str(LIMIT),
               "--batch_size", "8", "--output_path", str(out), "--log_samples"]
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", ACCELERATE_USE_CPU="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _results(out) -> list[dict]:
    return [json.loads(path.read_text()) for path in out.rglob("results_*.json")]


def _samples(out, task) -> list[dict]:
    (path,) = out.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def one_and_two(memorised_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("data_parallel")
    _eval(memorised_model, root / "one", [sys.executable])
    log = _eval(memorised_model, root / "two", [sys.executable, "-m", "accelerate.commands.launch", *TWO_CPU_PROCESSES])
    return root / "one", root / "two", log


@pytest.mark.slow
def test_two_processes_each_score_a_shard_gathered_once(one_and_two):
    _, two, log = one_and_two
    # lm-eval logs the rank each process builds its documents on; a process that does not know it is
    # one of two says rank 0 and evaluates everything
    ranks = {line.rsplit(" on rank ", 1)[1].rstrip(".") for line in log.splitlines()
             if "Building contexts for unlearn_tofu_forget01 on rank" in line}
    assert ranks == {"0", "1"}
    assert len(_results(two)) == 1
    for task in TASKS.split(","):
        assert sorted(sample["doc_id"] for sample in _samples(two, task)) == list(range(LIMIT))


@pytest.mark.slow
def test_two_processes_report_the_numbers_of_one(one_and_two):
    one, two, _ = one_and_two
    (expected,), (got,) = [run["results"] for run in _results(one)], [run["results"] for run in _results(two)]
    assert set(got) == set(expected)
    compared = 0
    for task, metrics in expected.items():
        for key, value in metrics.items():
            if isinstance(value, float) and "stderr" not in key:
                # a rank's batches hold other documents: float32 rounding moves values by ~1e-8 (measured)
                assert got[task][key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), (task, key)
                compared += not math.isnan(value)
    assert compared >= 10
    for task in TASKS.split(","):
        by_doc = {sample["doc_id"]: sample["filtered_resps"] for sample in _samples(two, task)}
        for sample in _samples(one, task):
            assert _close(by_doc[sample["doc_id"]], sample["filtered_resps"]), (task, sample["doc_id"])


def _close(got, expected) -> bool:
    """Responses equal up to float rounding (a rank's batches hold other documents); the samples file
    writes numbers as strings."""
    if isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(_close(a, b) for a, b in zip(got, expected))
    try:
        return math.isclose(float(got), float(expected), rel_tol=1e-6, abs_tol=1e-7)
    except (TypeError, ValueError):
        return got == expected
