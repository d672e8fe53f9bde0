"""TOFU metrics (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs").

Conventions: ``token_logprobs`` are the natural-log probabilities the model
assigns to each target token under teacher forcing; L(y) = -mean(token_logprobs)
is the mean per-token NLL, so everything here is length-normalised.

Truth ratio orientation: R = wrong / correct ("perturbed over paraphrased"),
the raw value open-unlearning stores. See docs/metrics_functions.md for the
other definitions in the wild.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

from .aggregate import mean
from .validation import as_vector


def probability(token_logprobs: Sequence[float]) -> float:
    """Length-normalised probability: p(y) = exp(mean_t log p(y_t)) = exp(-L(y)).

    Source: TOFU (Maini et al. 2024), the per-token-normalised "Probability".
    Range [0, 1]. Higher = the model finds the answer more likely (higher is
    better on retain data, lower means more forgetting on forget data).

    >>> round(probability([-1.0, -3.0]), 4)  # exp(-2)
    0.1353
    """
    return float(np.exp(as_vector(token_logprobs, "token_logprobs").mean()))


def _mean_logprob_of_perturbed(perturbed_logprobs: Sequence[Sequence[float]]) -> float:
    """mean_i of mean_t log p(perturbed_i, t), i.e. -mean_i L(perturbed_i)."""
    if len(perturbed_logprobs) == 0:
        raise ValueError("perturbed_logprobs is empty; pass one list of token log-probs per perturbed answer")
    per_answer = [
        as_vector(answer, f"perturbed_logprobs[{i}]").mean()
        for i, answer in enumerate(perturbed_logprobs)
    ]
    return float(np.mean(per_answer))


def truth_ratio(
    correct_logprobs: Sequence[float],
    perturbed_logprobs: Sequence[Sequence[float]],
    denominator_eps: float = 0.0,
) -> float:
    """Truth ratio: R = exp(-mean_i L(perturbed_i)) / (exp(-L(correct)) + eps).

    Source: TOFU (Maini et al. 2024) R_truth as implemented in code (TOFU repo and
    open-unlearning): per-answer mean NLLs are averaged over the perturbed
    answers *before* exponentiating (a geometric mean of the normalised
    probabilities). Orientation wrong/correct; open-unlearning uses eps=1e-10.
    With eps=0 the ratio is computed in log space (no underflow).
    Range [0, inf). R < 1: the correct answer is preferred. Aggregate with
    :func:`truth_ratio_closer_to_one` (forget) or :func:`truth_ratio_true_better`.

    >>> round(truth_ratio([-1.0], [[-2.0], [-2.0, -4.0]]), 4)  # exp(-2.5) / exp(-1)
    0.2231
    """
    if denominator_eps < 0:
        raise ValueError(f"denominator_eps must be >= 0; got {denominator_eps!r}")
    correct = float(as_vector(correct_logprobs, "correct_logprobs").mean())
    wrong = _mean_logprob_of_perturbed(perturbed_logprobs)
    if denominator_eps > 0:
        return float(np.exp(wrong) / (np.exp(correct) + denominator_eps))
    if correct == -np.inf:
        raise ValueError(
            "the correct answer has probability 0 (a log-prob of -inf), so R is undefined; "
            "pass denominator_eps=1e-10 (open-unlearning's convention) to get a finite value"
        )
    with np.errstate(over="ignore"):
        return float(np.exp(wrong - correct))


def _non_negative_ratios(ratios: Sequence[float]) -> np.ndarray:
    values = as_vector(ratios, "ratios")
    if (values < 0).any():
        raise ValueError("truth ratios must be >= 0 (they are ratios of probabilities)")
    return values


def truth_ratio_closer_to_one(ratios: Sequence[float]) -> float:
    """Forget-set aggregation: mean_i min(R_i, 1 / R_i)   (R = 0 contributes 0).

    Source: TOFU forget truth ratio; open-unlearning "closer_to_1_better" (which
    writes 1 / (R + 1e-10); here 1/R exactly). The value is orientation-free.
    Range [0, 1]. Higher is better for forgetting: 1 = the model cannot tell
    the true answer from the perturbed ones.

    >>> truth_ratio_closer_to_one([0.5, 2.0, 1.0])  # (0.5 + 0.5 + 1) / 3
    0.6666666666666666
    """
    values = _non_negative_ratios(ratios)
    inverse = np.divide(1.0, values, out=np.full_like(values, np.inf), where=values > 0)
    return mean(np.minimum(values, inverse))


def truth_ratio_true_better(ratios: Sequence[float]) -> float:
    """Utility-set aggregation: mean_i max(0, 1 - R_i)   (R = wrong / correct).

    Source: TOFU truth ratio on retain / real-authors / world-facts;
    open-unlearning "true_better". Range [0, 1]. Higher is better: the model
    prefers the true answer.

    >>> truth_ratio_true_better([0.25, 2.0])  # (0.75 + 0) / 2
    0.375
    """
    return mean(np.maximum(0.0, 1.0 - _non_negative_ratios(ratios)))


def normalised_probability(correct_prob: float, perturbed_probs: Sequence[float]) -> float:
    """Option-normalised probability: p / (p + sum_i p_i).

    Source: TOFU "Probability" on real-authors and world-facts, where the
    correct answer competes with the perturbed ones (pass length-normalised
    probabilities from :func:`probability`). open-unlearning adds 1e-10 to the
    denominator; here an all-zero denominator raises instead.
    Range [0, 1]. Higher is better (utility).

    >>> normalised_probability(0.6, [0.1, 0.2, 0.1])  # 0.6 / 1.0
    0.6
    """
    others = as_vector(perturbed_probs, "perturbed_probs")
    if correct_prob < 0 or (others < 0).any():
        raise ValueError("probabilities must be >= 0; pass probabilities, not log-probabilities")
    total = correct_prob + float(others.sum())
    if total == 0:
        raise ValueError("all probabilities are 0, so the normalised probability is undefined")
    return float(correct_prob / total)


def forget_quality(ratios: Sequence[float], reference_ratios: Sequence[float]) -> float:
    """Forget quality: p-value of the two-sided KS test KS(ratios, reference_ratios).

    Source: TOFU forget quality: ``scipy.stats.ks_2samp`` between the unlearned
    model's forget-set truth ratios and the retain model's (default exact/asymptotic
    method choice). Use the same R orientation on both sides; since 1/R is
    monotone the p-value is the same under either orientation.
    Range [0, 1]. Higher is better (indistinguishable from the retain model).

    >>> forget_quality([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    1.0
    """
    sample = as_vector(ratios, "ratios")
    reference = as_vector(reference_ratios, "reference_ratios")
    return float(stats.ks_2samp(sample, reference).pvalue)


def model_utility(values: Sequence[float]) -> float:
    """Model utility: harmonic mean n / sum_i (1 / v_i); 0.0 if any v_i is 0.

    Source: TOFU model utility (harmonic mean of the retain / real-authors /
    world-facts probability, ROUGE and truth-ratio scores).
    Range [0, max(v)]; for scores in [0, 1] it is in [0, 1]. Higher is better.

    >>> model_utility([0.5, 1.0])  # 2 / (2 + 1)
    0.6666666666666666
    """
    array = as_vector(values, "values")
    if (array < 0).any():
        raise ValueError("model_utility is a harmonic mean of scores >= 0; got a negative value")
    if (array == 0).any():
        return 0.0
    return float(array.size / np.sum(1.0 / array))
