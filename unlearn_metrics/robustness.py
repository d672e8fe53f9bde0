"""Statistics of the metric-robustness study: how a metric's value *after* an attack follows its value *before*.

One point per model: ``before[i]`` and ``after[i]`` are the same metric of model ``i`` clean and attacked.
Wang et al. (ICLR 2025, "Towards Effective Evaluations and Comparisons for LLM Unlearning Methods",
arXiv:2406.09179) call a metric robust when the two are strongly linearly related (Pearson
correlation → 1), and, for attacks that change only surface behaviour, when the fit is the identity
(slope → 1). Formulas and use: docs/robustness.md, "The study".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

MIN_MODELS = 4  # n − 3 > 0: the Fisher-z standard error 1/√(n − 3) needs at least four points


def paired_values(before: Sequence[float], after: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The two samples as float arrays of equal length, with every pair holding a NaN dropped."""
    x, y = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"before and after must be 1-D and of equal length, got shapes {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def pearson_interval(r: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Confidence interval of a Pearson r over ``n`` pairs by the Fisher transformation.

    z = artanh(r), se = 1/√(n − 3), interval tanh(z ± q·se) with q the normal quantile of (1 + confidence)/2.
    Needs n ≥ 4; r = ±1 gives the degenerate interval (r, r).

    >>> [round(bound, 4) for bound in pearson_interval(0.5, 28)]
    [0.156, 0.7358]
    """
    if n < MIN_MODELS:
        raise ValueError(f"a confidence interval for r needs at least {MIN_MODELS} pairs, got {n}")
    if math.isnan(r):
        return math.nan, math.nan
    if abs(r) >= 1.0:
        return float(r), float(r)
    quantile = stats.norm.ppf((1 + confidence) / 2)
    z, half_width = math.atanh(r), quantile / math.sqrt(n - 3)
    return math.tanh(z - half_width), math.tanh(z + half_width)


def pair_statistics(before: Sequence[float], after: Sequence[float], confidence: float = 0.95) -> dict[str, float]:
    """PCC with its confidence interval, Spearman ρ, least-squares fit after ≈ slope·before + intercept, mean shift.

    Keys: ``n``, ``pcc``, ``pcc_low``, ``pcc_high``, ``spearman``, ``slope``, ``intercept``,
    ``mean_shift`` (mean of after − before). Pairs with a NaN are left out; fewer than four remaining
    pairs raise a ValueError. A constant sample has no correlation: ``pcc``/``spearman`` are NaN then
    (and ``slope``/``intercept`` too when ``before`` is constant).

    >>> result = pair_statistics([0.1, 0.2, 0.3, 0.4], [0.2, 0.4, 0.6, 0.8])
    >>> round(result["pcc"], 12), round(result["slope"], 12), round(result["intercept"], 12), round(result["mean_shift"], 12)
    (1.0, 2.0, 0.0, 0.25)
    """
    x, y = paired_values(before, after)
    n = len(x)
    if n < MIN_MODELS:
        raise ValueError(f"robustness statistics need at least {MIN_MODELS} models with both values, got {n}")
    pcc = _correlation(x, y, stats.pearsonr)
    low, high = pearson_interval(pcc, n, confidence)
    slope, intercept = _fit(x, y)
    return {"n": n, "pcc": pcc, "pcc_low": low, "pcc_high": high, "spearman": _correlation(x, y, stats.spearmanr),
            "slope": slope, "intercept": intercept, "mean_shift": float(np.mean(y - x))}


def _correlation(x: np.ndarray, y: np.ndarray, method) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.clip(method(x, y).statistic, -1.0, 1.0))


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares of y on x: slope = cov(x, y)/var(x), intercept = ȳ − slope·x̄."""
    if np.ptp(x) == 0:
        return math.nan, math.nan
    dx = x - x.mean()
    slope = float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))
    return slope, float(y.mean() - slope * x.mean())
