"""Hand-computed values for MUSE's pure-number parts (unlearn_metrics.muse)."""

from __future__ import annotations

import math

import pytest

from unlearn_metrics import muse


@pytest.mark.parametrize(
    "output, expected",
    [
        ("1472", "1472"),
        ("1472\n\nQuestion: When?\nAnswer: 1500", "1472"),
        ("Paris\nQuestion: next", "Paris"),
        ("Paris Question: next", "Paris "),
        ("\n\nParis", ""),  # cut before the first stop, even at the start (MUSE does not strip first)
        ("a\nb\n\nc", "a\nb"),
        ("Question:", ""),
    ],
)
def test_knowmem_answer_is_cut_before_the_first_stop(output, expected):
    assert muse.cut_knowmem_answer(output) == expected


def test_rouge_l_by_hand():
    # tokens (lowercased [a-z0-9] runs): output "the cat sat", reference "the cat sat on the mat"
    # LCS = 3: precision 3/3, recall 3/6, F = 2PR/(P+R) = 2/3
    f1, recall = muse.rouge_l("The cat sat.", "the cat sat on the mat")
    assert (f1, recall) == pytest.approx((2 / 3, 0.5), abs=1e-12)
    # no stemming (MUSE's setting): "running" and "run" do not match
    assert muse.rouge_l("running", "run") == (0.0, 0.0)
    # LCS "a c" of "a b c" vs "a c d e": P = 2/3, R = 2/4, F = 2·(2/3)(1/2)/(2/3 + 1/2) = 4/7
    f1, recall = muse.rouge_l("a b c", "a c d e")
    assert (f1, recall) == pytest.approx((4 / 7, 0.5), abs=1e-12)
    assert muse.rouge_l("", "anything") == (0.0, 0.0)


def test_privleak_in_muse_orientation():
    # AUC 0.9 (members clearly detected) → MUSE AUC 0.1; against the published News 0.4772:
    # (0.1 − 0.4772) / 0.4772 × 100 = −79.044...
    assert muse.privleak(0.9, 0.4772) == pytest.approx((0.1 - 0.4772) / 0.4772 * 100, abs=1e-9)
    assert muse.privleak(0.9, 0.4772) == pytest.approx(-79.04442581726, abs=1e-6)
    assert muse.privleak(1 - 0.5393, 0.5393) == pytest.approx(0.0, abs=1e-9)  # like the retrained model
    assert muse.privleak(1.0, 0.5) == pytest.approx(-100.0)  # fully memorised
    assert muse.privleak(0.25, 0.5) == pytest.approx(50.0)  # over-unlearned: (0.75 − 0.5)/0.5
    assert muse.PUBLISHED_AUC_RETRAIN == {"news": 0.4772, "books": 0.5393}


def test_privleak_agrees_with_the_tofu_formula():
    from unlearn_metrics import mia

    # TOFU's privleak takes the retain model's AUC in our orientation; MUSE's takes it in MUSE's.
    assert muse.privleak(0.8, 1 - 0.45) == pytest.approx(mia.privleak(0.8, 0.45), abs=1e-9)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan])
def test_privleak_refuses_an_impossible_retrain_auc(bad):
    with pytest.raises(ValueError, match="retrained model's AUC"):
        muse.privleak(0.5, bad)


def test_muse_auc_refuses_out_of_range():
    with pytest.raises(ValueError):
        muse.muse_auc(1.2)
