"""Hand-computed checks for unlearn_metrics.mia (orientation: higher score = member)."""

import doctest
import math

import numpy as np
import pytest

from unlearn_metrics import mia
from unlearn_metrics.mia import (
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    roc_auc,
    zlib_score,
)


def test_doctests():
    assert doctest.testmod(mia).failed == 0


# ---- LOSS / zlib ---------------------------------------------------------------


def test_loss_score_is_mean_logprob():
    # mean(-0.5, -1.5) = -1.0 ; a text the model finds likelier scores higher
    assert loss_score([-0.5, -1.5]) == -1.0
    assert loss_score([-0.1, -0.1]) > loss_score([-2.0, -2.0])
    with pytest.raises(ValueError, match="empty"):
        loss_score([])


def test_zlib_score_hand_computed():
    # zlib.compress(b"hello"): 2-byte header + fixed-Huffman deflate block
    # (3 header bits + 5 literals * 8 bits + 7-bit end code = 50 bits -> 7 bytes)
    # + 4-byte Adler-32 = 13 bytes.  mean log-prob (-1 - 2 - 3) / 3 = -2 -> -2 / 13
    assert zlib_score([-1.0, -2.0, -3.0], "hello") == pytest.approx(-2 / 13)


def test_zlib_score_penalises_compressible_text_less():
    # same mean loss; repetitive text compresses to fewer bytes -> |score| larger
    repetitive = zlib_score([-2.0], "ab" * 50)
    varied = zlib_score([-2.0], "The quick brown fox jumps over the lazy dog, 1234567890!")
    assert repetitive < varied < 0


def test_zlib_score_empty_text_raises():
    with pytest.raises(ValueError, match="text is empty"):
        zlib_score([-1.0], "")


# ---- Min-K% ------------------------------------------------------------------


def test_min_k_score_count_rule():
    logprobs = [-0.1, -4.0, -0.2, -3.0, -0.3, -2.0, -0.4]  # T = 7
    # k = 0.4: int(7 * 0.4) = int(2.8) = 2 lowest: (-4 - 3) / 2 = -3.5
    assert min_k_score(logprobs, k=0.4) == pytest.approx(-3.5)
    # k = 0.5: int(3.5) = 3 lowest: (-4 - 3 - 2) / 3 = -3
    assert min_k_score(logprobs, k=0.5) == pytest.approx(-3.0)
    # k = 1.0: plain mean = -10 / 7
    assert min_k_score(logprobs, k=1.0) == pytest.approx(-10 / 7)
    # k = 0.1: int(0.7) = 0 -> floored to 1 lowest = -4
    assert min_k_score(logprobs, k=0.1) == pytest.approx(-4.0)


def test_min_k_score_errors():
    with pytest.raises(ValueError, match="fraction"):
        min_k_score([-1.0], k=0.0)
    with pytest.raises(ValueError, match="empty"):
        min_k_score([])


# ---- Min-K%++ ----------------------------------------------------------------


def _moments(probs):
    """mu = sum p log p, var = sum p (log p - mu)^2 over an explicit distribution."""
    p = np.asarray(probs)
    logp = np.log(p)
    mu = float(np.sum(p * logp))
    return mu, float(np.sum(p * (logp - mu) ** 2))


def test_min_k_plus_plus_hand_computed_distribution():
    ln2 = math.log(2)
    # position 1: p = (1/2, 1/4, 1/4), log p = (-ln2, -2ln2, -2ln2)
    #   mu = 1/2 (-ln2) + 1/2 (-2ln2) = -1.5 ln2
    #   var = 1/2 (0.5 ln2)^2 + 1/2 (0.5 ln2)^2 = 0.25 ln2^2, sd = 0.5 ln2
    #   observed token has p = 1/2: z = (-ln2 + 1.5ln2) / (0.5ln2) = +1
    # position 2: p = (1/4, 1/4, 1/2): same moments; observed p = 1/4:
    #   z = (-2ln2 + 1.5ln2) / (0.5ln2) = -1
    # position 3: uniform (1/3, 1/3, 1/3): mu = -ln3, var = 0 -> floored; z = 0 / tiny = 0
    mu1, var1 = _moments([0.5, 0.25, 0.25])
    assert mu1 == pytest.approx(-1.5 * ln2) and var1 == pytest.approx(0.25 * ln2**2)
    mu2, var2 = _moments([0.25, 0.25, 0.5])
    mu3, var3 = _moments([1 / 3, 1 / 3, 1 / 3])
    assert mu3 == pytest.approx(-math.log(3)) and var3 == pytest.approx(0.0, abs=1e-15)
    logprobs = [math.log(0.5), math.log(0.25), math.log(1 / 3)]
    means, variances = [mu1, mu2, mu3], [var1, var2, 0.0]
    # z = (+1, -1, 0)
    # k = 1.0: all 3 -> (1 - 1 + 0) / 3 = 0
    assert min_k_plus_plus_score(logprobs, means, variances, k=1.0) == pytest.approx(0.0, abs=1e-9)
    # k = 0.7: int(2.1) = 2 lowest (-1, 0) -> -0.5
    assert min_k_plus_plus_score(logprobs, means, variances, k=0.7) == pytest.approx(-0.5)
    # k = 0.4 (default): int(1.2) = 1 lowest -> -1
    assert min_k_plus_plus_score(logprobs, means, variances) == pytest.approx(-1.0)


def test_min_k_plus_plus_variance_floor_and_errors():
    # zero variance and observed token below the mean: (-1 - 0) / sqrt(1e-12) = -1e6
    assert min_k_plus_plus_score([-1.0], [0.0], [0.0]) == pytest.approx(-1e6)
    # tiny negative round-off is clamped like 0
    assert min_k_plus_plus_score([-1.0], [-1.0], [-1e-12]) == 0.0
    with pytest.raises(ValueError, match="variances must be >= 0"):
        min_k_plus_plus_score([-1.0], [-1.0], [-0.5])
    with pytest.raises(ValueError, match="lengths 2, 1, 2"):
        min_k_plus_plus_score([-1.0, -2.0], [-1.0], [1.0, 1.0])


# ---- ROC-AUC -----------------------------------------------------------------


def test_roc_auc_perfect_and_reversed():
    # every member (3, 4) above every nonmember (1, 2): 4 of 4 pairs -> 1.0
    assert roc_auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert roc_auc([1.0, 2.0], [3.0, 4.0]) == 0.0


def test_roc_auc_ties_count_half():
    # pairs (member, nonmember): (2,1) win, (2,2) tie, (3,1) win, (3,2) win
    # -> (3 + 0.5) / 4 = 0.875
    assert roc_auc([2.0, 3.0], [1.0, 2.0]) == pytest.approx(0.875)
    # all tied -> 0.5 (no signal)
    assert roc_auc([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.5


def test_roc_auc_mixed_ranking():
    # members (1, 4, 5), nonmembers (2, 3): wins 4>2, 4>3, 5>2, 5>3 = 4 of 6 -> 2/3
    assert roc_auc([1.0, 4.0, 5.0], [2.0, 3.0]) == pytest.approx(2 / 3)


def test_roc_auc_handles_infinite_scores():
    # -inf scores (probability-0 tokens) rank lowest: wins 0 > -inf, 0 > -1, -1 > -inf,
    # tie (-1, -1) -> (3 + 0.5) / 4
    assert roc_auc([0.0, -1.0], [-math.inf, -1.0]) == pytest.approx((3 + 0.5) / 4)


def test_roc_auc_empty_raises():
    with pytest.raises(ValueError, match="nonmember_scores"):
        roc_auc([1.0], [])


# ---- PrivLeak ----------------------------------------------------------------


def test_privleak_worked_example():
    # our AUCs 0.9 (unlearned) and 0.5 (retain) -> MUSE AUCs 0.1 and 0.5
    # (0.1 - 0.5) / 0.5 * 100 = -80
    assert privleak(0.9, 0.5) == pytest.approx(-80.0)


def test_privleak_uses_muse_denominator():
    # retain 0.6 -> MUSE retain AUC 0.4; unlearned 0.9 -> 0.1
    # (0.1 - 0.4) / 0.4 * 100 = -75  (NOT (0.6 - 0.9) / 0.6 * 100 = -50)
    assert privleak(0.9, 0.6) == pytest.approx(-75.0)


def test_privleak_sign_and_bounds():
    assert privleak(0.5, 0.5) == 0.0  # behaves like the retain model
    assert privleak(1.0, 0.6) == pytest.approx(-100.0)  # full memorisation: floor -100
    assert privleak(0.3, 0.5) == pytest.approx(40.0)  # over-unlearned: (0.7 - 0.5) / 0.5
    assert privleak(0.9, 0.5) < privleak(0.7, 0.5) < 0


def test_privleak_errors():
    with pytest.raises(ValueError, match="undefined"):
        privleak(0.9, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        privleak(1.2, 0.5)
    with pytest.raises(ValueError, match="retain_auc"):
        privleak(0.5, -0.1)
