"""The demo's resumable steps: each output is made atomically and stamped with the hash of what made it.

A :class:`Step` is one output (a data folder, a checkpoint, an lm-eval run, a file) and what
determines it: its configuration (settings, the digests of the outputs it reads, the fingerprint of the
data it reads) and the fingerprint of our code (:func:`harness_ext.provenance.code_fingerprint`), so an
edit to the code or the data redoes the steps it can change. Its stamp, ``<output>.demo.json`` beside
the output, holds their SHA-256, the ingredients themselves and the seconds the output took.
:meth:`Ledger.ensure` skips a step whose output exists with a matching stamp and otherwise rebuilds it
(the builders all write through a temporary sibling and a rename), then writes the stamp. An interrupt
leaves the previous output or none, never half of one; an output without its stamp is made again. See docs/demo.md.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness_ext.io import OutputError, atomic_write_json
from harness_ext.provenance import code_fingerprint, data_fingerprint, digest

STAMP_SUFFIX = ".demo.json"


@dataclass(frozen=True)
class Source:
    """A model or data set the next steps read: where it is (a path or a hub id) and what determines it."""

    location: str
    digest: str


def data_digest(tasks: list[str]) -> str:
    """What the data ``tasks`` read is: its source and, for local data, the content of their folders."""
    return digest(data_fingerprint(list(tasks)))


@dataclass(frozen=True)
class Step:
    """One output of the demo, the phase it belongs to, and the configuration that determines it.

    ``config`` should contain the digests of the steps it reads and, when it reads data, the data's
    digest (:func:`data_digest`), so that a change upstream redoes it. ``code`` is taken when the step
    is declared.
    """

    phase: str
    name: str
    output: Path
    config: dict
    stamp_dir: Path | None = None  # default: beside the output
    code: str = field(default_factory=lambda: code_fingerprint())  # the name is looked up per step

    @property
    def ingredients(self) -> dict:
        return {**self.config, "code": self.code}

    @property
    def digest(self) -> str:
        return digest(self.ingredients)

    @property
    def stamp(self) -> Path:
        folder = self.stamp_dir or self.output.parent
        return folder / f"{self.output.name}{STAMP_SUFFIX}"

    def valid_stamp(self) -> dict | None:
        """The stamp, when the output exists and was made by this configuration."""
        if not self.output.exists() or not self.stamp.is_file():
            return None
        try:
            stamp = json.loads(self.stamp.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return stamp if isinstance(stamp, dict) and stamp.get("digest") == self.digest else None


@dataclass(frozen=True)
class StepTime:
    phase: str
    name: str
    seconds: float  # what making the output took, in this run or the one that made it
    made_now: bool


class Ledger:
    """Runs steps in order, skipping the ones already done, and keeps their times."""

    def __init__(self, log: Callable[[str], None] = print):
        self.log = log
        self.times: list[StepTime] = []

    def ensure(self, step: Step, build: Callable[[Path], object]) -> Path:
        """``build(step.output)`` unless the output is up to date; returns the output path."""
        stamp = step.valid_stamp()
        if stamp is not None:
            seconds = float(stamp.get("seconds", 0.0))
            self.log(f"[demo] {step.name}: up to date (made in {seconds:.1f} s)")
            self.times.append(StepTime(step.phase, step.name, seconds, made_now=False))
            return step.output
        step.stamp.unlink(missing_ok=True)
        self.log(f"[demo] {step.name} ...")
        start = time.perf_counter()
        build(step.output)
        seconds = time.perf_counter() - start
        atomic_write_json(step.stamp, {"digest": step.digest, "seconds": round(seconds, 3),
                                        "ingredients": step.ingredients})
        self.log(f"[demo] {step.name}: {seconds:.1f} s")
        self.times.append(StepTime(step.phase, step.name, seconds, made_now=True))
        return step.output

    def phase_seconds(self) -> dict[str, dict]:
        """Per phase, in order: total seconds, steps made now, steps reused."""
        phases: dict[str, dict] = {}
        for entry in self.times:
            phase = phases.setdefault(entry.phase, {"seconds": 0.0, "made": 0, "reused": 0})
            phase["seconds"] += entry.seconds
            phase["made" if entry.made_now else "reused"] += 1
        return {name: {**values, "seconds": round(values["seconds"], 1)} for name, values in phases.items()}


def forget_stamps(work: Path) -> int:
    """Delete every stamp under ``work`` (``--fresh``): each step is then made again, even after an interrupt."""
    stamps = list(Path(work).rglob(f"*{STAMP_SUFFIX}")) if Path(work).is_dir() else []
    for stamp in stamps:
        stamp.unlink()
    return len(stamps)


@contextlib.contextmanager
def exclusive(work: Path):
    """Hold ``work/demo.lock`` so that two demos never write into the same folder at once."""
    import fcntl

    Path(work).mkdir(parents=True, exist_ok=True)
    with open(Path(work) / "demo.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another demo is writing into {work}; wait for it or choose another --out") from None
        yield
