"""Membership-inference (MIA) scores and their summaries.

Orientation used throughout: a HIGHER score means "more likely a member"
(more likely in the training data). Attacks defined on losses in their papers
are negated accordingly. ``token_logprobs`` are natural-log probabilities of
the text's tokens under teacher forcing.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
from scipy import stats

from .validation import as_vector, lowest_fraction_count

#: Variances below this are clamped before dividing in Min-K%++ (a zero
#: variance means a one-hot next-token distribution).
VARIANCE_FLOOR = 1e-12


def loss_score(token_logprobs: Sequence[float]) -> float:
    """LOSS attack: s = -L(x) = (1/T) * sum_t log p(x_t | x_<t).

    Source: Yeom et al. 2018 (loss thresholding), negated so higher = member.
    Range (-inf, 0].

    >>> loss_score([-1.0, -2.0, -3.0])
    -2.0
    """
    return float(as_vector(token_logprobs, "token_logprobs").mean())


def zlib_score(token_logprobs: Sequence[float], text: str) -> float:
    """ZLib attack: s = -L(x) / len(zlib.compress(x.encode("utf-8"))).

    Source: Carlini et al. 2021 ("Extracting Training Data from LLMs"): ratio
    of the mean NLL to the zlib-compressed length in bytes (bits would only
    rescale by 8), negated so higher = member. Range (-inf, 0].

    >>> round(zlib_score([-2.0, -4.0], "hello"), 4)  # -3 / 13 bytes
    -0.2308
    """
    if not text:
        raise ValueError("text is empty; the zlib attack needs the text the log-probs belong to")
    compressed_length = len(zlib.compress(text.encode("utf-8")))
    return loss_score(token_logprobs) / compressed_length


def _mean_of_lowest(values: np.ndarray, k: float) -> float:
    count = lowest_fraction_count(values.size, k)
    return float(np.sort(values)[:count].mean())


def min_k_score(token_logprobs: Sequence[float], k: float = 0.4) -> float:
    """Min-K% Prob: s = mean of the n lowest log p(x_t), n = max(1, int(T * k)).

    Source: Shi et al. 2024 ("Detecting Pretraining Data from LLMs"); the
    count truncates like the reference code and is at least 1. Higher = member.
    Range (-inf, 0].

    >>> min_k_score([-1.0, -5.0, -2.0, -3.0, -0.5], k=0.4)  # n = 2: (-5 - 3) / 2
    -4.0
    """
    return _mean_of_lowest(as_vector(token_logprobs, "token_logprobs"), k)


def min_k_plus_plus_score(
    token_logprobs: Sequence[float],
    means: Sequence[float],
    variances: Sequence[float],
    k: float = 0.4,
) -> float:
    """Min-K%++: mean of the n lowest z_t = (log p(x_t) - mu_t) / sqrt(var_t).

    mu_t = E_{z ~ p(.|x_<t)}[log p(z|x_<t)] and var_t = Var_{z ~ p(.|x_<t)}[log p(z|x_<t)]
    over the vocabulary; n = max(1, int(T * k)) as in :func:`min_k_score`.
    var_t is clamped to at least VARIANCE_FLOOR (1e-12), so a one-hot
    distribution gives z_t = 0 for its sure token; variances below -1e-6 raise.
    Source: Zhang et al. 2024 ("Min-K%++"). Higher = member. Range: real numbers.

    >>> min_k_plus_plus_score([-1.0, -3.0], [-2.0, -2.0], [4.0, 1.0], k=1.0)  # (0.5 - 1) / 2
    -0.25
    """
    logprobs = as_vector(token_logprobs, "token_logprobs")
    mu = as_vector(means, "means")
    var = as_vector(variances, "variances")
    if not logprobs.size == mu.size == var.size:
        raise ValueError(
            "token_logprobs, means and variances need one entry per token; got lengths "
            f"{logprobs.size}, {mu.size}, {var.size}"
        )
    if (var < -1e-6).any():
        raise ValueError("variances must be >= 0; got a clearly negative value (check the formula)")
    z_scores = (logprobs - mu) / np.sqrt(np.maximum(var, VARIANCE_FLOOR))
    return _mean_of_lowest(z_scores, k)


def roc_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """ROC-AUC: P(s_member > s_nonmember) + 0.5 * P(tie) = U / (n_member * n_nonmember).

    U is the Mann-Whitney statistic of the member sample
    (``scipy.stats.mannwhitneyu``). Scores must be oriented higher = member.
    Range [0, 1]. 0.5 = no membership signal; near 1 = members are detectable.

    >>> roc_auc([3.0, 4.0], [1.0, 2.0])
    1.0
    """
    members = as_vector(member_scores, "member_scores")
    nonmembers = as_vector(nonmember_scores, "nonmember_scores")
    u_statistic = stats.mannwhitneyu(members, nonmembers).statistic
    return float(u_statistic / (members.size * nonmembers.size))


def privleak(auc: float, retain_auc: float) -> float:
    """MUSE PrivLeak: (retain_auc - auc) / (1 - retain_auc) * 100, with our AUCs.

    Source: Shi et al. 2024 ("MUSE"): PrivLeak = (A_unl - A_ret) / A_ret * 100,
    where MUSE's AUC A is the complement of ours (A = 1 - auc; open-unlearning
    converts the same way). Here auc, retain_auc = P(member score > nonmember
    score) on forget vs holdout, for the evaluated and the retain model.
    Range [-100, 100 * retain_auc / (1 - retain_auc)]. Best is 0 (like the
    retain model); strongly negative = the forget set is still memorised,
    positive = over-unlearned.

    >>> privleak(0.9, 0.5)  # MUSE AUCs 0.1 and 0.5: (0.1 - 0.5) / 0.5 * 100
    -80.0
    """
    for name, value in (("auc", auc), ("retain_auc", retain_auc)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an AUC in [0, 1]; got {value!r}")
    if retain_auc == 1.0:
        raise ValueError(
            "retain_auc is 1, so MUSE's retain AUC (1 - retain_auc) is 0 and PrivLeak "
            "is undefined; check the retain model's scores and their orientation"
        )
    muse_auc, muse_retain_auc = 1.0 - auc, 1.0 - retain_auc
    return float((muse_auc - muse_retain_auc) / muse_retain_auc * 100)
