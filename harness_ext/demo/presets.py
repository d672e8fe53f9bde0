"""The demo's presets: the constants and the :class:`DemoConfig` that determine its outputs (docs/demo.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

FORGET, RETAIN = "forget10", "retain90"
METHODS = ("ga", "graddiff", "kl", "npo", "simnpo", "idkpo", "rmu")
QUICK_METHODS = ("ga", "npo")
CONTROLS = ("none", "mix")
TOFU_TASKS = (f"unlearn_tofu_{FORGET}", "unlearn_tofu_utility", f"unlearn_fluency_{FORGET}",
              "unlearn_fluency_retain", f"unlearn_tofu_mia_{FORGET}")
REFERENCE_TASKS = (f"unlearn_tofu_{FORGET}", f"unlearn_tofu_mia_{FORGET}")  # what the retain model's reference holds
# Real models only (a tiny model is at chance), and only where their data is: the hub, or <folder>/mmlu, /probes.
GENERAL_TASKS = {"mmlu": "unlearn_mmlu_mini", "probes": "unlearn_probes"}
# The tiny model has no pretraining: TOFU's general-knowledge sets (part of model utility) are taught with the authors.
GENERAL_FACTS = ("real_authors", "world_facts")
TOKENIZER_CONFIGS = ("full", "holdout10", f"{FORGET}_perturbed", "retain_perturbed", *GENERAL_FACTS)
# lm-eval's per-task notices, and our tasks' expected NaN notices (the calibration scores retain documents only;
# the reference pass has no reference yet), would bury the phase times. Blank cells are footnoted in leaderboard.md.
QUIET_LOGGERS = ("lm_eval", "unlearn_tasks")
TINY_MODEL = {"vocab_size": 512, "hidden_size": 64, "layers": 2, "heads": 4, "seed": 0}


@dataclass(frozen=True)
class DemoConfig:
    """Everything that determines the demo's outputs. ``model=None`` is the tiny model built on the data."""

    preset: str = "full"
    model: str | None = None
    data: str = "synthetic"  # synthetic | hub | a folder in the $UNLEARN_DATA_DIR layout
    authors: int = 40  # synthetic data only
    seed: int = 0
    finetune: dict = field(default_factory=lambda: {"lr": 3e-3, "epochs": 30, "batch_size": 16})
    unlearn: dict = field(default_factory=lambda: {"lr": 1e-3, "epochs": 5, "batch_size": 8})
    method_settings: dict = field(default_factory=lambda: {"rmu": {"layer": 1, "retain_weight": 1.0}})
    methods: tuple[str, ...] = METHODS
    tau: float = 0.9
    tasks: tuple[str, ...] = TOFU_TASKS
    eval_batch_size: int = 16
    device: str | None = None  # evaluation device; training goes through Accelerate (a GPU when visible)
    threads: int | None = 1  # torch CPU threads; 1 is fastest for the tiny model on 2 busy cores

    @property
    def tiny(self) -> bool:
        return self.model is None


def demo_config(*, quick: bool = False, model: str | None = None, data: str | None = None,
                methods: list[str] | None = None, **overrides) -> DemoConfig:
    """The preset for the tiny model (``model=None``) or a real one, ``quick`` or full, then ``overrides``.

    ``overrides``: ``authors``, ``device``, ``threads``, and ``finetune_lr``/``finetune_epochs``/
    ``unlearn_lr``/``unlearn_epochs`` (None = the preset's).
    """
    from harness_ext.unlearning.losses import get_method

    config = DemoConfig(preset="quick" if quick else "full")
    if model is not None:  # TOFU's own settings (lr 1e-5, 5 epochs), in float32 so small updates are kept
        data = data or os.environ.get("UNLEARN_DATA_DIR") or "hub"
        config = replace(config, model=model, data=data,
                         finetune={"lr": 1e-5, "epochs": 5, "batch_size": 16, "dtype": "float32"},
                         unlearn={"lr": 1e-5, "epochs": 5, "batch_size": 8, "dtype": "float32"},
                         method_settings={}, tasks=TOFU_TASKS + general_tasks(data), threads=None)
    elif data is not None:
        config = replace(config, data=data)
    if quick:
        config = replace(config, methods=QUICK_METHODS, authors=20)
    if methods:
        for name in methods:
            get_method(name)  # unknown names: an error listing the known ones
        config = replace(config, methods=tuple(methods))
    for stage in ("finetune", "unlearn"):
        for name in ("lr", "epochs"):
            value = overrides.pop(f"{stage}_{name}", None)
            if value is not None:
                config = replace(config, **{stage: {**getattr(config, stage), name: value}})
    return replace(config, **{key: value for key, value in overrides.items() if value is not None})


def general_tasks(data: str) -> tuple[str, ...]:
    """The general-knowledge tasks whose data ``data`` has (all on the hub; none in the synthetic set)."""
    if data == "synthetic":
        return ()
    folder = None if data == "hub" else Path(data).expanduser()
    return tuple(task for family, task in GENERAL_TASKS.items() if folder is None or (folder / family).is_dir())
