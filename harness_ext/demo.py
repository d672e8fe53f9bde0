"""``unlearn-bench demo``: the whole unlearning story, offline, in one command (docs/demo.md).

synthetic TOFU-format data → a tiny Llama and tokenizer built on it → fine-tuned target (``full``)
and retain (``retain90``) models → each unlearning method on ``forget10``, plain and controlled
(model mixing calibrated to τ × the target's retain ES) → every checkpoint scored by the
``unlearn_*`` tasks through lm-eval in this process, each model loaded once (retain model first:
its run is the reference for forget quality and privleak) → ``leaderboard.md``/``.csv`` and plots.

The phases are in :mod:`harness_ext.demo_phases`, each step resumable (:mod:`harness_ext.demo_steps`);
``--model``/``--data`` run the same pipeline on a real base model and the real TOFU.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
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


def data_dir(config: DemoConfig, work: Path) -> Path | None:
    """The ``$UNLEARN_DATA_DIR`` of the run: the synthetic data, a given folder, or None for the hub."""
    if config.data == "synthetic":
        return work / "data"
    if config.data == "hub":
        return None
    folder = Path(config.data).expanduser().resolve()
    if not (folder / "tofu").is_dir():
        raise ValueError(f"--data {config.data}: no tofu/ folder in it; give a folder in the $UNLEARN_DATA_DIR "
                         "layout (<folder>/tofu/<config>.jsonl), 'hub', or 'synthetic'")
    return folder


@contextlib.contextmanager
def demo_environment(config: DemoConfig, work: Path):
    """The run's data folder, target-metric cache, torch threads and quieter lm-eval logs; restored after."""
    import torch

    folder = data_dir(config, work)
    saved = {name: os.environ.get(name) for name in ("UNLEARN_DATA_DIR", "UNLEARN_CACHE_DIR")}
    threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    os.environ["UNLEARN_CACHE_DIR"] = str(work / "cache")
    if folder is None:
        os.environ.pop("UNLEARN_DATA_DIR", None)
    else:
        os.environ["UNLEARN_DATA_DIR"] = str(folder)
    if config.threads:
        torch.set_num_threads(config.threads)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def run_demo(config: DemoConfig, out: Path, *, fresh: bool = False, log=print):
    """Run (or resume) the pipeline into ``out``; returns the leaderboard table (a DataFrame)."""
    from harness_ext.demo_phases import run_pipeline
    from harness_ext.demo_steps import Ledger, exclusive, forget_stamps

    out = Path(out).expanduser().resolve()
    work = out / "work"
    ledger = Ledger(log=log)
    start, load = time.perf_counter(), os.getloadavg()[0]
    with exclusive(work), demo_environment(config, work):
        if fresh:
            forget_stamps(work)
        table = run_pipeline(ledger, config, out, work)
        wall = time.perf_counter() - start
        write_timings(out, config, ledger, wall, load)
    for line in timing_lines(ledger, wall) + summary_lines(table, config.tau):
        log(line)
    return table


def write_timings(out: Path, config: DemoConfig, ledger, wall: float, load: float) -> None:
    import torch

    from harness_ext.io import atomic_write_json

    atomic_write_json(out / "timings.json", {
        "preset": config.preset, "model": config.model or "tiny", "data": config.data,
        "wall_seconds_this_run": round(wall, 1),
        "phases": ledger.phase_seconds(),
        "steps": [{"name": entry.name, "seconds": round(entry.seconds, 1), "made_now": entry.made_now}
                  for entry in ledger.times],
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads() if config.threads is None
                    else config.threads, "load_average_at_start": round(load, 2),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "note": "seconds of each step when it was made (a resumed run reuses the times of the run that made it)",
    })


def timing_lines(ledger, wall: float) -> list[str]:
    lines = ["", "[demo] phase times (s):"]
    for phase, values in ledger.phase_seconds().items():
        reused = f"  ({values['reused']} step(s) reused)" if values["reused"] else ""
        lines.append(f"  {phase:<12} {values['seconds']:7.1f}{reused}")
    return lines + [f"  {'this run':<12} {wall:7.1f}"]


def summary_lines(table, tau: float) -> list[str]:
    """The story in a few columns: what each model remembers and how much utility it kept."""
    columns = ["model", "α", "forget ROUGE-L", "forget ES", "forget quality", "model utility (% target)",
               "retain ES (% target)", "matched"]
    shown = table[[name for name in columns if name in table.columns]]
    return ["", f"[demo] leaderboard (excerpt; τ = {tau:g}):", shown.to_string(index=False, float_format="%.3f")]


# ---- CLI ------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("results/demo"),
                        help="output folder (default results/demo); checkpoints and runs go to <out>/work/")
    parser.add_argument("--quick", action="store_true", help="CI size: 20 authors, methods ga and npo (≤ 3 minutes)")
    parser.add_argument("--fresh", action="store_true", help="redo every step, even those already up to date")
    parser.add_argument("--model", help="a real base model (HF id or folder) instead of the tiny one")
    parser.add_argument("--data", help="synthetic (default without --model), hub, or a folder in the "
                                       "$UNLEARN_DATA_DIR layout (default with --model: $UNLEARN_DATA_DIR, else hub)")
    parser.add_argument("--device", help="evaluation device, e.g. cuda (default: cuda when visible, else cpu)")
    parser.add_argument("--methods", type=lambda text: [name for name in text.split(",") if name],
                        help=f"comma-separated unlearning methods (default: {','.join(METHODS)}; --quick: "
                             f"{','.join(QUICK_METHODS)})")
    parser.add_argument("--authors", type=int, help="synthetic authors (default 40; --quick: 20)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: 1 for the tiny model)")
    for stage in ("finetune", "unlearn"):
        parser.add_argument(f"--{stage}-lr", type=float, help=f"{stage} learning rate (default: the preset's)")
        parser.add_argument(f"--{stage}-epochs", type=int, help=f"{stage} epochs (default: the preset's)")


def run(args: argparse.Namespace) -> int:
    config = demo_config(quick=args.quick, model=args.model, data=args.data, methods=args.methods,
                         authors=args.authors, device=args.device, threads=args.threads,
                         finetune_lr=args.finetune_lr, finetune_epochs=args.finetune_epochs,
                         unlearn_lr=args.unlearn_lr, unlearn_epochs=args.unlearn_epochs)
    try:
        run_demo(config, args.out, fresh=args.fresh)
    except KeyboardInterrupt:
        print("\n[demo] interrupted: finished steps are kept; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"\n[demo] wrote {args.out / 'leaderboard.md'}, leaderboard.csv, leaderboard.html, plots and timings.json")
    return 0
