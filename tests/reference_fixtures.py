"""Runs as `lm_eval --output_path DIR --log_samples` writes them, for building retain references in tests."""

from __future__ import annotations

import json
from pathlib import Path

STAMP = "2026-01-01T00-00-00.000000"
DEFAULT_SETTINGS = {"convention": "default", "task_version": 1, "chat_template": None, "system_instruction": None}


def evaluate_into(folder: Path, lm, checkpoint: Path, tasks: list[str], **kwargs) -> Path:
    """Evaluate ``lm`` (loaded from ``checkpoint``) and save the run with lm-eval's own EvaluationTracker,
    as ``lm_eval --output_path folder --log_samples`` does; returns the model's folder inside ``folder``."""
    from lm_eval.loggers import EvaluationTracker

    from harness_ext.evaluation import evaluate

    tracker = EvaluationTracker(output_path=str(folder))
    output = evaluate(lm, tasks, log_samples=True, bootstrap_iters=0, model_args=f"pretrained={checkpoint}",
                      evaluation_tracker=tracker, **kwargs)
    samples = output.pop("samples")
    tracker.save_results_aggregated(results=output, samples=samples)
    for task in output["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return folder / tracker.general_config_tracker.model_name_sanitized


def write_samples(folder: Path, task: str, samples: list[dict], *, metadata: dict | None = None,
                  version=1, model: str = "ckpt/retain") -> Path:
    """A samples file and the results file of the same time stamp, shaped as lm-eval writes them (the task
    metadata holds ``prompt_settings`` as our tasks record them: no chat template, no system instruction)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"samples_{task}_{STAMP}.jsonl"
    path.write_text("".join(json.dumps(sample) + "\n" for sample in samples), encoding="utf-8")
    results_path = folder / f"results_{STAMP}.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {
        "results": {}, "configs": {}, "versions": {}, "model_name": model,
        "config": {"model": "unlearn_hf", "model_args": f"pretrained={model}", "model_dtype": "torch.float32",
                   "limit": None}}
    results["results"][task] = {}
    prompt_settings = {"chat_template": None, "system_instruction": None}
    results["configs"][task] = {"task": task, "metadata": {"version": version, "prompt_settings": prompt_settings,
                                                           **(metadata or {})}}
    results["versions"][task] = version
    results_path.write_text(json.dumps(results), encoding="utf-8")
    return path


def forget_samples(count: int) -> list[dict]:
    """``count`` TOFU forget samples with questions q0, q1, ... and truth ratios 0.5, 1.5, ..."""
    return [{"doc": {"question": f"q{i}"}, "forget_quality": {"index": i, "truth_ratio": 0.5 + i}} for i in range(count)]
