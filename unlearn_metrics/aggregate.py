"""Aggregation of per-item metric values."""

from __future__ import annotations

from typing import Sequence

from .validation import as_vector


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean: sum(values) / len(values).

    Unlike ``numpy.mean`` it raises on an empty input (instead of warning and
    returning NaN), and unlike ``numpy.nanmean`` it never skips NaN: a NaN input
    raises ValueError so a broken item cannot silently vanish from a score.

    >>> mean([1, 2, 3, 4])
    2.5
    """
    return float(as_vector(values, "values").mean())
