"""Input validation shared by the metric functions.

Every metric converts its numeric inputs through :func:`as_vector`, so the
same rules hold everywhere: inputs must be one-dimensional, non-empty and
free of NaN (``inf``/``-inf`` are allowed: a log-probability of ``-inf`` is a
legitimate "impossible token").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def as_vector(values: Sequence[float], name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float array; raise ValueError if empty or NaN.

    >>> as_vector([1, 2.5], "xs").tolist()
    [1.0, 2.5]
    """
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a flat sequence of numbers; got {type(values).__name__} "
            f"that numpy cannot convert ({error})"
        ) from error
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be one-dimensional (one number per item); got shape {array.shape}"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty; the metric is undefined without at least one value")
    n_nan = int(np.isnan(array).sum())
    if n_nan:
        raise ValueError(
            f"{name} contains {n_nan} NaN value(s); fix the upstream computation "
            "(NaN usually means an empty target span or a failed forward pass)"
        )
    return array


def check_fraction(k: float, name: str = "k") -> float:
    """Return ``k`` if ``0 < k <= 1``, else raise ValueError.

    >>> check_fraction(0.4)
    0.4
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1]; got {k!r} (use 0.2 for 20%)")
    return k


def lowest_fraction_count(n: int, k: float) -> int:
    """Number of items kept by a "lowest k%" rule: ``max(1, int(n * k))``.

    ``int`` truncates (floor for positive numbers), as the Min-K% reference code
    does; the floor of 1 keeps very short sequences defined.

    >>> lowest_fraction_count(10, 0.4), lowest_fraction_count(2, 0.4)
    (4, 1)
    """
    return max(1, int(n * check_fraction(k)))
