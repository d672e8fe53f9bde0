"""The demo's phases, in order: data → base model → fine-tuned target and retain → unlearned → scored →
robustness study → leaderboard.

Each output is a :class:`~harness_ext.demo.steps.Step` whose configuration holds the digests of the
outputs it reads, so a change anywhere upstream redoes what depends on it and nothing else.
``config`` is a :class:`harness_ext.demo.presets.DemoConfig`. See docs/demo.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_ext.demo.presets import (
    CONTROLS, FORGET, GENERAL_FACTS, REFERENCE_TASKS, RETAIN, TINY_MODEL, TOKENIZER_CONFIGS,
)
from harness_ext.demo.robustness import robustness
from harness_ext.demo.steps import Ledger, Step, digest_of
from harness_ext.io import atomic_folder
from harness_ext.provenance import package_version


# ---- builders -------------------------------------------------------------------------------------

def build_base_model(texts: list[str], out: Path, settings: dict) -> None:
    """The tiny Llama and its tokenizer, trained on ``texts``, written atomically to ``out``."""
    from harness_ext.demo.tiny_model import build_tiny_model

    atomic_folder(out, lambda folder: build_tiny_model(texts, folder, **settings))


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


# ---- the pipeline ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    """A model or data set the next steps read: where it is (a path or a hub id) and what determines it."""

    location: str
    digest: str


def run_pipeline(ledger: Ledger, config, out: Path, work: Path):
    """Every step of the demo in order (``config``: a :class:`harness_ext.demo.presets.DemoConfig`); the leaderboard table."""
    data = data_source(ledger, config, work)
    base = base_model(ledger, config, work, data)
    target = finetuned(ledger, config, work, base, data, "target", "full")
    retain = finetuned(ledger, config, work, base, data, "retain", RETAIN)
    models = {"retain": retain, "target": target}
    for method in config.methods:
        for control in CONTROLS:
            models[f"{method}-{control}"] = unlearned(ledger, config, work, target, data, method, control)
    runs = evaluated(ledger, config, work, models)
    robustness(ledger, config, out, work, models)  # first, so leaderboard.html embeds its figure
    return leaderboard(ledger, config, out, work, target, retain, runs)


def data_source(ledger: Ledger, config, work: Path) -> Source:
    """The synthetic benchmark, written once; real TOFU (a folder or the hub) is taken as given."""
    from harness_ext.demo.synth import write_benchmark

    if config.data != "synthetic":
        return Source(config.data, digest_of({"data": config.data}))
    step = Step("data", f"data: synthetic TOFU, {config.authors} authors", work / "data",
                {"authors": config.authors, "seed": config.seed, "version": package_version()})
    ledger.ensure(step, lambda out: write_benchmark(out, config.authors, config.seed))
    return Source(str(step.output), step.digest)


def base_model(ledger: Ledger, config, work: Path, data: Source) -> Source:
    """The tiny Llama with a tokenizer trained on the data's texts, or the real base model as given."""
    from harness_ext.demo.tiny_model import tofu_texts
    from unlearn_tasks.tofu.data import load_tofu

    if not config.tiny:
        return Source(config.model, digest_of({"model": config.model}))
    step = Step("base model", "base model: tiny Llama and tokenizer", work / "models" / "base",
                {"data": data.digest, "texts": TOKENIZER_CONFIGS, **TINY_MODEL, "version": package_version()})

    def build(out: Path) -> None:
        rows = [row for name in TOKENIZER_CONFIGS for row in load_tofu(name)]
        build_base_model(tofu_texts(rows), out, TINY_MODEL)

    ledger.ensure(step, build)
    return Source(str(step.output), step.digest)


def training_data(split: str, general: tuple[str, ...]):
    """``tofu:<split>``, or its question/answer rows followed by those of the general-fact sets."""
    from unlearn_tasks.tofu.data import load_tofu

    if not general:
        return f"tofu:{split}"
    return [{"question": row["question"], "answer": row["answer"]}
            for name in (split, *general) for row in load_tofu(name)]


def finetuned(ledger: Ledger, config, work: Path, base: Source, data: Source, name: str, split: str) -> Source:
    """The base fine-tuned on ``split`` (plus, for the tiny model, the general facts): the target or retain model."""
    from harness_ext.unlearning.api import finetune

    general = GENERAL_FACTS if config.tiny else ()
    label = " + ".join((f"tofu:{split}", *general))
    step = Step("fine-tune", f"fine-tune {name} on {label}", work / "models" / name,
                {"base": base.digest, "data": data.digest, "train": [split, *general], **config.finetune,
                 "seed": config.seed, "version": package_version()})
    ledger.ensure(step, lambda out: finetune(base.location, training_data(split, general), out, overwrite=True,
                                             seed=config.seed, **config.finetune))
    return Source(str(step.output), step.digest)


def unlearned(ledger: Ledger, config, work: Path, target: Source, data: Source, method: str, control: str) -> Source:
    """``method`` on the forget set from the target; ``mix`` calibrates α to τ × the target's retain ES."""
    from harness_ext.unlearning.api import unlearn
    from harness_ext.unlearning.metric import MetricSpec
    from unlearn_tasks.tofu.data import load_tofu

    settings = {**config.unlearn, **config.method_settings.get(method, {})}
    tau = None if control == "none" else config.tau
    step = Step("unlearn", f"unlearn {method}, control {control}", work / "models" / f"{method}-{control}",
                {"target": target.digest, "data": data.digest, "method": method, "control": control, "tau": tau,
                 "forget": FORGET, "retain": RETAIN, **settings, "seed": config.seed, "version": package_version()})

    def build(out: Path) -> None:
        # es_retain is computed on the retain documents only, which come first: score just those.
        calibrate = MetricSpec(limit=len(load_tofu("retain_perturbed")), batch_size=config.eval_batch_size)
        unlearn(target.location, method, f"tofu:{FORGET}", f"tofu:{RETAIN}", out, overwrite=True, control=control,
                tau=tau, calibrate=calibrate, seed=config.seed, **settings)

    ledger.ensure(step, build)
    return Source(str(step.output), step.digest)


def evaluated(ledger: Ledger, config, work: Path, models: dict[str, Source]) -> list[Step]:
    """The retain model's reference, then one lm-eval run per model (the retain model first), each loaded once."""
    import torch

    from harness_ext.models import UnlearnHFLM
    from harness_ext.reference import build_reference

    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    settings = {"tasks": list(config.tasks), "batch_size": config.eval_batch_size, "version": package_version()}
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
                     {"retain": retain.digest, **settings, "tasks": reference_tasks})

    def build_retain_reference(out: Path) -> None:
        run = work / "reference-run"
        evaluate_checkpoint(lm_of(retain), Path(retain.location), reference_tasks, run, log_samples=True)
        build_reference(run, out)

    ledger.ensure(reference, build_retain_reference)
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
                {"runs": [run.digest for run in runs], "tau": config.tau, "forget": FORGET,
                 "version": package_version(), "html": True},
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
