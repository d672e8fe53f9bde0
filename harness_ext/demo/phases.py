"""The demo's phases, in order: data → base model → fine-tuned target and retain → unlearned → scored →
robustness study → leaderboard.

Each output is a :class:`~harness_ext.demo.steps.Step` whose configuration holds the digests of the
outputs and the data it reads (the code's fingerprint is in every step), so a change anywhere upstream
redoes what depends on it and nothing else. ``config`` is a :class:`harness_ext.demo.presets.DemoConfig`.
See docs/demo.md.
"""

from __future__ import annotations

from pathlib import Path

from harness_ext.demo.presets import (
    CONTROLS, FORGET, GENERAL_FACTS, RETAIN, TINY_MODEL, TOFU_TASKS, TOKENIZER_CONFIGS,
)
from harness_ext.demo.robustness import robustness
from harness_ext.demo.scoring import evaluated, leaderboard
from harness_ext.demo.steps import Ledger, Source, Step, data_digest
from harness_ext.io import atomic_folder
from harness_ext.provenance import digest


def run_pipeline(ledger: Ledger, config, out: Path, work: Path):
    """Every step of the demo in order; the leaderboard table."""
    data = data_source(ledger, config, work)
    base = base_model(ledger, config, work, data)
    target = finetuned(ledger, config, work, base, data, "target", "full")
    retain = finetuned(ledger, config, work, base, data, "retain", RETAIN)
    models = {"retain": retain, "target": target}
    for method in config.methods:
        for control in CONTROLS:
            models[f"{method}-{control}"] = unlearned(ledger, config, work, target, data, method, control)
    runs = evaluated(ledger, config, work, models)
    robustness(ledger, config, out, work, models, data)  # first, so leaderboard.html embeds its figure
    return leaderboard(ledger, config, out, work, target, retain, runs)


def data_source(ledger: Ledger, config, work: Path) -> Source:
    """The TOFU data the training steps read: the synthetic benchmark (written once), or real TOFU as given.

    Its digest is the data's fingerprint (source and file contents, :func:`~harness_ext.demo.steps.data_digest`),
    taken from ``$UNLEARN_DATA_DIR`` as the run's environment sets it, so an edited file redoes what reads it.
    """
    from harness_ext.demo.synth import write_benchmark

    location = config.data
    if config.data == "synthetic":
        step = Step("data", f"data: synthetic TOFU, {config.authors} authors", work / "data",
                    {"authors": config.authors, "seed": config.seed})
        ledger.ensure(step, lambda out: write_benchmark(out, config.authors, config.seed))
        location = str(step.output)
    return Source(location, data_digest(list(TOFU_TASKS)))


def base_model(ledger: Ledger, config, work: Path, data: Source) -> Source:
    """The tiny Llama with a tokenizer trained on the data's texts, or the real base model by its content."""
    if not config.tiny:
        return Source(config.model, digest({"model": config.model, "content": model_content(config.model)}))
    step = Step("base model", "base model: tiny Llama and tokenizer", work / "models" / "base",
                {"data": data.digest, "texts": TOKENIZER_CONFIGS, **TINY_MODEL})
    ledger.ensure(step, build_base_model)
    return Source(str(step.output), step.digest)


def build_base_model(out: Path) -> None:
    """The tiny Llama and its tokenizer, trained on the texts of :data:`TOKENIZER_CONFIGS`, written atomically."""
    from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
    from unlearn_tasks.tofu.data import load_tofu

    texts = tofu_texts([row for name in TOKENIZER_CONFIGS for row in load_tofu(name)])
    atomic_folder(out, lambda folder: build_tiny_model(texts, folder, **TINY_MODEL))


def model_content(location: str) -> str:
    """The content hash of the model at ``location`` (weights in their stored dtype, and its tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness_ext.provenance import content_hash

    model = AutoModelForCausalLM.from_pretrained(location, torch_dtype="auto", low_cpu_mem_usage=True)
    return content_hash(model, AutoTokenizer.from_pretrained(location))


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
                 "seed": config.seed})
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
                 "forget": FORGET, "retain": RETAIN, **settings, "seed": config.seed,
                 "calibrate_batch_size": config.eval_batch_size})

    def build(out: Path) -> None:
        # es_retain is computed on the retain documents only, which come first: score just those.
        calibrate = MetricSpec(limit=len(load_tofu("retain_perturbed")), batch_size=config.eval_batch_size)
        unlearn(target.location, method, f"tofu:{FORGET}", f"tofu:{RETAIN}", out, overwrite=True, control=control,
                tau=tau, calibrate=calibrate, seed=config.seed, **settings)

    ledger.ensure(step, build)
    return Source(str(step.output), step.digest)
