"""Running the demo: its environment (data folder, cache, threads, quieter logs), the pipeline, timings.

:func:`run_demo` holds ``<out>/work/demo.lock``, sets up the environment, runs the phases
(:mod:`harness_ext.demo.phases`) through a :class:`~harness_ext.demo.steps.Ledger`, and writes
``timings.json``. See docs/demo.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from harness_ext.demo.phases import run_pipeline
from harness_ext.demo.presets import QUIET_LOGGERS, DemoConfig
from harness_ext.demo.steps import Ledger, exclusive, forget_stamps
from unlearn_tasks.datasource import DataError


def data_dir(config: DemoConfig, work: Path) -> Path | None:
    """The ``$UNLEARN_DATA_DIR`` of the run: the synthetic data, a given folder, or None for the hub."""
    if config.data == "synthetic":
        return work / "data"
    if config.data == "hub":
        return None
    folder = Path(config.data).expanduser().resolve()
    if not (folder / "tofu").is_dir():
        raise DataError(f"--data {config.data}: no tofu/ folder in it; give a folder in the $UNLEARN_DATA_DIR "
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
