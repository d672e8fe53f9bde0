"""unlearn_metrics.robustness: hand-computed values and scipy on known samples."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats

from unlearn_metrics import robustness
from unlearn_metrics.robustness import pair_statistics, pearson_interval

# Anscombe's quartet, set I (Anscombe 1973): r = 0.816, fit y = 3.00 + 0.500·x, published values.
ANSCOMBE_X = [10, 8, 13, 9, 11, 14, 6, 4, 12, 7, 5]
ANSCOMBE_Y = [8.04, 6.95, 7.58, 8.81, 8.33, 9.96, 7.24, 4.26, 10.84, 4.82, 5.68]


def test_hand_computed_line():
    # after = 2·before + 0.1 exactly: r = 1, the interval collapses, ρ = 1, shift = mean(before) + 0.1.
    result = pair_statistics([0.0, 0.1, 0.3, 0.6], [0.1, 0.3, 0.7, 1.3])
    assert result["n"] == 4
    assert result["pcc"] == pytest.approx(1.0) and result["spearman"] == pytest.approx(1.0)
    assert (result["pcc_low"], result["pcc_high"]) == pytest.approx((1.0, 1.0))
    assert result["slope"] == pytest.approx(2.0) and result["intercept"] == pytest.approx(0.1)
    assert result["mean_shift"] == pytest.approx(0.35)


def test_hand_computed_small_sample():
    # x = 1..4, y = 1, 3, 2, 4: x̄ = 2.5, ȳ = 2.5, Σdx·dy = 4, Σdx² = 5, Σdy² = 5 → r = slope = 0.8, intercept 0.5.
    result = pair_statistics([1, 2, 3, 4], [1, 3, 2, 4])
    assert result["pcc"] == pytest.approx(0.8)
    assert result["slope"] == pytest.approx(0.8) and result["intercept"] == pytest.approx(0.5)
    assert result["spearman"] == pytest.approx(0.8)  # ranks equal the values
    assert result["mean_shift"] == pytest.approx(0.0)
    # Fisher: z = artanh(0.8) = 1.0986, se = 1/√1 = 1, z ± 1.959964 → tanh(−0.8614), tanh(3.0586)
    assert (result["pcc_low"], result["pcc_high"]) == pytest.approx((-0.6970, 0.9956), abs=1e-4)


def test_anscombe_against_published_values_and_scipy():
    result = pair_statistics(ANSCOMBE_X, ANSCOMBE_Y)
    assert result["pcc"] == pytest.approx(0.816, abs=1e-3)
    assert result["slope"] == pytest.approx(0.500, abs=1e-3) and result["intercept"] == pytest.approx(3.00, abs=2e-3)
    fit = stats.linregress(ANSCOMBE_X, ANSCOMBE_Y)
    assert (result["slope"], result["intercept"]) == pytest.approx((fit.slope, fit.intercept), rel=1e-12)
    pearson = stats.pearsonr(ANSCOMBE_X, ANSCOMBE_Y)
    assert result["pcc"] == pytest.approx(pearson.statistic, rel=1e-12)
    interval = pearson.confidence_interval(confidence_level=0.95)
    assert (result["pcc_low"], result["pcc_high"]) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert result["spearman"] == pytest.approx(stats.spearmanr(ANSCOMBE_X, ANSCOMBE_Y).statistic, rel=1e-12)
    assert result["mean_shift"] == pytest.approx(np.mean(np.subtract(ANSCOMBE_Y, ANSCOMBE_X)), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_samples_against_scipy(seed):
    generator = np.random.default_rng(seed)
    before = generator.uniform(size=12)
    after = 0.7 * before + generator.normal(scale=0.2, size=12)
    result = pair_statistics(before, after, confidence=0.9)
    pearson = stats.pearsonr(before, after)
    interval = pearson.confidence_interval(confidence_level=0.9)
    assert result["pcc"] == pytest.approx(pearson.statistic, rel=1e-10)
    assert (result["pcc_low"], result["pcc_high"]) == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert result["slope"] == pytest.approx(stats.linregress(before, after).slope, rel=1e-10)
    assert result["spearman"] == pytest.approx(stats.spearmanr(before, after).statistic, rel=1e-10)


def test_interval_by_hand():
    # r = 0.5, n = 28: z = 0.549306, se = 0.2 → tanh(0.549306 ∓ 0.391993)
    low, high = pearson_interval(0.5, 28)
    assert low == pytest.approx(math.tanh(0.549306 - 0.391993), abs=1e-5)
    assert high == pytest.approx(math.tanh(0.549306 + 0.391993), abs=1e-5)
    assert pearson_interval(-1.0, 5) == (-1.0, -1.0)


def test_nan_pairs_are_dropped_and_too_few_pairs_refused():
    result = pair_statistics([1, 2, float("nan"), 3, 4], [1, 3, 5, 2, 4])
    assert result["n"] == 4 and result["pcc"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="at least 4"):
        pair_statistics([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="equal length"):
        pair_statistics([1, 2, 3, 4], [1, 2, 3])


def test_constant_samples_have_no_correlation():
    flat_after = pair_statistics([0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5])
    assert math.isnan(flat_after["pcc"]) and math.isnan(flat_after["spearman"])
    assert flat_after["slope"] == pytest.approx(0.0) and flat_after["intercept"] == pytest.approx(0.5)
    flat_before = pair_statistics([0.5] * 4, [0.1, 0.2, 0.3, 0.4])
    assert math.isnan(flat_before["slope"]) and math.isnan(flat_before["pcc_low"])


def test_doctests():
    assert doctest.testmod(robustness).failed == 0
