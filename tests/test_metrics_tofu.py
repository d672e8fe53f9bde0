"""Hand-computed checks for unlearn_metrics.tofu (+ aggregate, validation)."""

import doctest
import math
import subprocess
import sys

import pytest

import unlearn_metrics
from unlearn_metrics import aggregate, tofu, validation
from unlearn_metrics.tofu import (
    forget_quality,
    model_utility,
    normalised_probability,
    probability,
    truth_ratio,
    truth_ratio_closer_to_one,
    truth_ratio_true_better,
)


@pytest.mark.parametrize("module", [tofu, aggregate, validation, unlearn_metrics])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0


def test_package_imports_no_heavy_frameworks():
    code = (
        "import sys, unlearn_metrics; "
        "print([m for m in ('torch', 'transformers', 'lm_eval') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- probability -------------------------------------------------------------


def test_probability_is_exp_of_mean_logprob():
    # mean(-0.5, -1.5, -1.0) = -1.0  ->  exp(-1) = 0.36787944...
    assert probability([-0.5, -1.5, -1.0]) == pytest.approx(math.exp(-1.0))
    # log(0.25) for each of two tokens -> p = 0.25 (length-normalised, not 0.0625)
    assert probability([math.log(0.25)] * 2) == pytest.approx(0.25)
    assert probability([0.0]) == 1.0
    assert probability([-math.inf, -1.0]) == 0.0


def test_probability_rejects_empty_and_nan():
    with pytest.raises(ValueError, match="empty"):
        probability([])
    with pytest.raises(ValueError, match="NaN"):
        probability([-1.0, float("nan")])
    with pytest.raises(ValueError, match="one-dimensional"):
        probability([[-1.0], [-2.0]])


# ---- truth ratio -------------------------------------------------------------


def test_truth_ratio_hand_computed():
    # correct: mean(-1, -3) = -2               -> p_correct = exp(-2)
    # perturbed: mean(-4) = -4, mean(-2, -4) = -3, mean(-5, -5, -5) = -5
    #   mean over answers = (-4 - 3 - 5) / 3 = -4  -> numerator exp(-4)
    # R = exp(-4) / exp(-2) = exp(-2) = 0.135335...
    r = truth_ratio([-1.0, -3.0], [[-4.0], [-2.0, -4.0], [-5.0, -5.0, -5.0]])
    assert r == pytest.approx(math.exp(-2.0))


def test_truth_ratio_averages_losses_not_probabilities():
    # perturbed per-answer means -1 and -3: geometric version exp(-2) = 0.1353,
    # arithmetic mean of probabilities (exp(-1) + exp(-3)) / 2 = 0.2088 would differ.
    r = truth_ratio([0.0], [[-1.0], [-3.0]])
    assert r == pytest.approx(math.exp(-2.0))
    assert r != pytest.approx((math.exp(-1.0) + math.exp(-3.0)) / 2)


def test_truth_ratio_eps_matches_open_unlearning_convention():
    # exp(-1) / (exp(-1) + 1e-10) = 1 / (1 + 1e-10 * e) ~= 1 - 2.718e-10
    r = truth_ratio([-1.0], [[-1.0]], denominator_eps=1e-10)
    assert r == pytest.approx(1.0 / (1.0 + 1e-10 * math.e), rel=1e-15)
    assert r < 1.0
    # correct prob 0: eps keeps R finite: exp(-1) / 1e-10
    assert truth_ratio([-math.inf], [[-1.0]], denominator_eps=1e-10) == pytest.approx(math.exp(-1) / 1e-10)


def test_truth_ratio_log_space_does_not_underflow():
    # both probabilities underflow float64 (exp(-800) == 0), the ratio is exp(10)
    assert truth_ratio([-810.0], [[-800.0]]) == pytest.approx(math.exp(10.0))


def test_truth_ratio_errors():
    with pytest.raises(ValueError, match="denominator_eps"):
        truth_ratio([-1.0], [[-1.0]], denominator_eps=-1e-10)
    with pytest.raises(ValueError, match="probability 0"):
        truth_ratio([-math.inf], [[-1.0]])
    with pytest.raises(ValueError, match="perturbed_logprobs is empty"):
        truth_ratio([-1.0], [])
    with pytest.raises(ValueError, match=r"perturbed_logprobs\[1\]"):
        truth_ratio([-1.0], [[-1.0], []])
    with pytest.raises(ValueError, match="correct_logprobs"):
        truth_ratio([], [[-1.0]])


def test_truth_ratio_closer_to_one():
    # min(R, 1/R): 0.5 -> 0.5, 2 -> 0.5, 1 -> 1, 4 -> 0.25, 0 -> 0
    # mean = (0.5 + 0.5 + 1 + 0.25 + 0) / 5 = 2.25 / 5 = 0.45
    assert truth_ratio_closer_to_one([0.5, 2.0, 1.0, 4.0, 0.0]) == pytest.approx(0.45)
    assert truth_ratio_closer_to_one([1.0]) == 1.0
    assert truth_ratio_closer_to_one([math.inf]) == 0.0


def test_truth_ratio_true_better():
    # max(0, 1 - R): 0.25 -> 0.75, 0.5 -> 0.5, 1 -> 0, 3 -> 0 ; mean = 1.25 / 4 = 0.3125
    assert truth_ratio_true_better([0.25, 0.5, 1.0, 3.0]) == pytest.approx(0.3125)
    assert truth_ratio_true_better([0.0]) == 1.0


@pytest.mark.parametrize("aggregate_fn", [truth_ratio_closer_to_one, truth_ratio_true_better])
def test_truth_ratio_aggregations_reject_bad_input(aggregate_fn):
    with pytest.raises(ValueError, match="empty"):
        aggregate_fn([])
    with pytest.raises(ValueError, match=">= 0"):
        aggregate_fn([0.5, -0.1])


# ---- normalised probability --------------------------------------------------


def test_normalised_probability():
    # 0.2 / (0.2 + 0.1 + 0.1 + 0.2) = 0.2 / 0.6 = 1/3
    assert normalised_probability(0.2, [0.1, 0.1, 0.2]) == pytest.approx(1 / 3)
    assert normalised_probability(0.0, [0.5]) == 0.0
    assert normalised_probability(0.3, [0.0]) == 1.0


def test_normalised_probability_errors():
    with pytest.raises(ValueError, match="log-probabilities"):
        normalised_probability(-0.5, [0.1])
    with pytest.raises(ValueError, match="undefined"):
        normalised_probability(0.0, [0.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        normalised_probability(0.5, [])


# ---- forget quality ----------------------------------------------------------


def test_forget_quality_identical_samples_is_one():
    # KS statistic D = 0 -> p = 1
    assert forget_quality([0.3, 0.7, 1.2, 2.0], [0.3, 0.7, 1.2, 2.0]) == 1.0


def test_forget_quality_disjoint_samples_exact_p_value():
    # n = m = 5, every forget ratio below every reference ratio -> D = 1.
    # Exact two-sided null: all C(10, 5) = 252 interleavings equally likely and
    # only 2 of them (all-x-first, all-y-first) reach D = 1 -> p = 2 / 252.
    p = forget_quality([0.1, 0.2, 0.3, 0.4, 0.5], [1.1, 1.2, 1.3, 1.4, 1.5])
    assert p == pytest.approx(2 / 252)


def test_forget_quality_invariant_to_ratio_orientation():
    forget = [0.2, 0.5, 0.9, 1.5, 3.0]
    retain = [0.1, 0.3, 0.4, 0.6, 0.8, 2.5]
    inverted = forget_quality([1 / r for r in forget], [1 / r for r in retain])
    assert forget_quality(forget, retain) == pytest.approx(inverted)


def test_forget_quality_rejects_empty():
    with pytest.raises(ValueError, match="reference_ratios"):
        forget_quality([0.5], [])


# ---- model utility -----------------------------------------------------------


def test_model_utility_harmonic_mean():
    # 3 / (1/0.5 + 1/0.25 + 1/1) = 3 / (2 + 4 + 1) = 3/7
    assert model_utility([0.5, 0.25, 1.0]) == pytest.approx(3 / 7)
    assert model_utility([0.4]) == pytest.approx(0.4)


def test_model_utility_zero_gives_zero_without_warning(recwarn):
    assert model_utility([0.9, 0.0, 0.8]) == 0.0
    assert len(recwarn) == 0


def test_model_utility_errors():
    with pytest.raises(ValueError, match="negative"):
        model_utility([0.5, -0.1])
    with pytest.raises(ValueError, match="empty"):
        model_utility([])


# ---- aggregate / validation --------------------------------------------------


def test_mean_and_its_errors():
    assert aggregate.mean([1.0, 2.0, 6.0]) == 3.0
    with pytest.raises(ValueError, match="empty"):
        aggregate.mean([])
    with pytest.raises(ValueError, match="1 NaN"):
        aggregate.mean([1.0, float("nan")])


def test_lowest_fraction_count_rule():
    # max(1, int(n * k)): 10 * 0.4 = 4; 7 * 0.4 = 2.8 -> 2; 2 * 0.4 = 0.8 -> 0 -> 1
    assert validation.lowest_fraction_count(10, 0.4) == 4
    assert validation.lowest_fraction_count(7, 0.4) == 2
    assert validation.lowest_fraction_count(2, 0.4) == 1
    assert validation.lowest_fraction_count(5, 1.0) == 5
    for bad in (0.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            validation.lowest_fraction_count(5, bad)
