"""The on-disk cache of the target model's calibration metric, keyed on everything that determines it.

A value's ingredients (:func:`target_ingredients`) are the model's content hash (weights with their
dtypes, tokenizer, chat template), the task configuration (task, metric, limit, metadata), our code's
fingerprint with the package version, and the data the task reads (source and content); see
``harness_ext/provenance.py``. Changing any of them computes the value again.

Each entry is its own file, ``$UNLEARN_CACHE_DIR/target_metrics/<sha256 of the ingredients>.json``
(default ``~/.cache/unlearn-bench``), written atomically, so concurrent calibrations sharing one
cache never lose each other's entries. A damaged or unreadable entry is recomputed, never trusted.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

from harness_ext import provenance
from harness_ext.io import atomic_write_json

CACHE_ENV = "UNLEARN_CACHE_DIR"
CACHE_FOLDER = "target_metrics"


def cache_dir() -> Path:
    """``$UNLEARN_CACHE_DIR``, else ``~/.cache/unlearn-bench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unlearn-bench").expanduser()


def target_ingredients(model, tokenizer, task_config: dict) -> dict:
    """What a target's metric depends on: the model's content, ``task_config`` (with ``task``), code and data."""
    return {"model": provenance.content_hash(model, tokenizer), "task_config": task_config,
            **provenance.number_provenance([task_config["task"]])}


class TargetCache:
    """Metric values in one JSON file per key (the SHA-256 of their ingredients) under ``directory``."""

    def __init__(self, directory: Path | None = None):
        self.folder = Path(directory or cache_dir()) / CACHE_FOLDER

    def entry(self, ingredients: dict) -> Path:
        return self.folder / f"{provenance.digest(ingredients)}.json"

    def lookup(self, ingredients: dict) -> float | None:
        """The stored value, or None when there is none or its file is damaged."""
        try:
            stored = json.loads(self.entry(ingredients).read_text(encoding="utf-8"))
            value = float(stored["value"])
        except (OSError, ValueError, TypeError, KeyError):  # JSONDecodeError is a ValueError
            return None
        return value if math.isfinite(value) else None

    def store(self, ingredients: dict, value: float) -> None:
        atomic_write_json(self.entry(ingredients), {"value": value, "ingredients": ingredients})

    def value(self, ingredients: dict, compute: Callable[[], float]) -> tuple[float, bool]:
        """``(value, was_cached)``: the stored value for ``ingredients``, else ``compute()``, stored."""
        cached = self.lookup(ingredients)
        if cached is not None:
            return cached, True
        value = float(compute())
        self.store(ingredients, value)
        return value, False
