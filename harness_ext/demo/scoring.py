"""The demo's scoring phases: the retain model's reference, one lm-eval run per checkpoint, the leaderboard.

``config`` is a :class:`harness_ext.demo.presets.DemoConfig`; models are :class:`~harness_ext.demo.steps.Source`\\ s.
See docs/demo.md.
"""

from __future__ import annotations

from pathlib import Path

from harness_ext.demo.presets import FORGET, REFERENCE_TASKS
from harness_ext.demo.steps import Ledger, Source, Step, data_digest
from harness_ext.io import atomic_folder


def evaluate_checkpoint(lm, checkpoint: Path, tasks: list[str], out: Path, *, metadata: dict | None = None,
                        log_samples: bool = False) -> None:
    """Score the loaded ``lm`` (of ``checkpoint``) on ``tasks``; write the run as ``lm_eval --output_path out`` does.

    The run lands in ``out/<model name>/results_<date>.json`` (and ``samples_<task>_<date>.jsonl``
    with ``log_samples``), written into a temporary sibling of ``out`` and renamed into place.
    """
    from lm_eval.loggers import EvaluationTracker

    from harness_ext.evaluation import evaluate

    def write(folder: Path) -> None:
        tracker = EvaluationTracker(output_path=str(folder))
        results = evaluate(lm, tasks, metadata=metadata, log_samples=log_samples,
                           model_args=f"pretrained={checkpoint}", evaluation_tracker=tracker)
        samples = results.pop("samples", None)
        tracker.save_results_aggregated(results=results, samples=samples)
        for task in results["configs"] if samples else ():
            tracker.save_results_samples(task_name=task, samples=samples[task])
        if not any(folder.rglob("results_*.json")):  # lm-eval logs a failed save instead of raising
            raise OSError(f"lm-eval did not write the results of {checkpoint} under {folder}")

    atomic_folder(out, write)


def evaluation_settings(config, tasks: list[str]) -> dict:
    """What a run of ``tasks`` depends on besides the model: the tasks, batch size and their data."""
    return {"tasks": list(tasks), "batch_size": config.eval_batch_size, "data": data_digest(tasks)}


def evaluated(ledger: Ledger, config, work: Path, models: dict[str, Source]) -> list[Step]:
    """The retain model's reference, then one lm-eval run per model (the retain model first), each loaded once."""
    import torch

    from harness_ext.models import UnlearnHFLM
    from harness_ext.reference import build_reference

    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    loaded: dict[str, object] = {}

    def lm_of(source: Source):
        if source.location not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[source.location] = UnlearnHFLM(pretrained=source.location, batch_size=config.eval_batch_size,
                                                  device=device)
        return loaded[source.location]

    retain = models["retain"]
    reference_tasks = [task for task in REFERENCE_TASKS if task in config.tasks]
    reference = Step("evaluate", "evaluate: retain-model reference (truth ratios, MIA AUCs)", work / "reference.json",
                     {"retain": retain.digest, **evaluation_settings(config, reference_tasks)})

    def build_retain_reference(out: Path) -> None:
        run = work / "reference-run"
        evaluate_checkpoint(lm_of(retain), Path(retain.location), reference_tasks, run, log_samples=True)
        build_reference(run, out)

    ledger.ensure(reference, build_retain_reference)
    settings = evaluation_settings(config, list(config.tasks))
    runs = []
    for name, source in models.items():
        step = Step("evaluate", f"evaluate {name}", work / "runs" / name,
                    {"model": source.digest, "reference": reference.digest, **settings})
        ledger.ensure(step, lambda out, source=source: evaluate_checkpoint(
            lm_of(source), Path(source.location), list(config.tasks), out,
            metadata={"retain_ref": str(reference.output)}))
        runs.append(step)
    return runs


def leaderboard(ledger: Ledger, config, out: Path, work: Path, target: Source, retain: Source, runs: list[Step]):
    """``leaderboard.md``/``.csv``/``.html`` and the plots in ``out``; returns the table as read back from the CSV."""
    import pandas as pd

    from harness_ext.leaderboard import build_leaderboard

    step = Step("leaderboard", "leaderboard", out / "leaderboard.md",
                {"runs": [run.digest for run in runs], "target": target.digest, "retain": retain.digest,
                 "tau": config.tau, "forget": FORGET, "html": True},
                stamp_dir=work)

    def build(_) -> None:
        build_leaderboard([run.output for run in runs], target.location, retain.location, out, config.tau, FORGET,
                          html=True)
        if config.preset != "quick":
            page_screenshot(ledger, out)

    ledger.ensure(step, build)
    return pd.read_csv(out / "leaderboard.csv")


def page_screenshot(ledger: Ledger, out: Path) -> None:
    """``leaderboard.png``: the page as headless Chromium shows it (for the README); a note when it cannot."""
    from harness_ext.leaderboard.screenshot import screenshot

    try:
        if screenshot(out / "leaderboard.html", out / "leaderboard.png") is None:
            ledger.log("[demo] leaderboard.png not made: chromium is not installed")
    except (RuntimeError, OSError, TimeoutError) as error:
        ledger.log(f"[demo] leaderboard.png not made: {error}")
