"""Hand-computed checks for unlearn_metrics.memorization and unlearn_metrics.rouge."""

import doctest
import itertools

import pytest

from unlearn_metrics import memorization, rouge
from unlearn_metrics.memorization import exact_memorization, extraction_strength
from unlearn_metrics.rouge import rouge_l_recall

T, F = True, False


@pytest.mark.parametrize("module", [memorization, rouge])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


# ---- extraction strength -----------------------------------------------------


@pytest.mark.parametrize(
    "matches, default, floored",
    [
        # last token wrong: k* = T = 3 -> 1 - 3/3 = 0 ; floored loop stops at k = 2 -> 1 - 2/3
        ([T, T, F], 0.0, 1 / 3),
        # matches[1:] all True: k* = 1 -> 1 - 1/3 = 2/3 (both)
        ([F, T, T], 2 / 3, 2 / 3),
        # all True: k* = 0 -> 1 (both)
        ([T, T, T], 1.0, 1.0),
        # nothing matches, T = 4: default 0 ; floored 1 - 3/4 = 1/4
        ([F, F, F, F], 0.0, 0.25),
        # only the last token matches, T = 4: k* = 3 -> 1/4 (both)
        ([F, T, F, T], 0.25, 0.25),
        # [T, F, T, T, T]: k* = 2 -> 1 - 2/5 = 3/5 (an early match before a miss does not count)
        ([T, F, T, T, T], 0.6, 0.6),
        # single wrong token: default 0, floored 1 - 0/1 = 1 (open-unlearning's quirk)
        ([F], 0.0, 1.0),
        ([T], 1.0, 1.0),
    ],
)
def test_extraction_strength_hand_vectors(matches, default, floored):
    assert extraction_strength(matches) == pytest.approx(default)
    assert extraction_strength(matches, floor_one_token=True) == pytest.approx(floored)


def _es_by_definition(matches):
    """Literal definition: smallest k in 0..T with matches[k:] all True."""
    n = len(matches)
    k_star = min(k for k in range(n + 1) if all(matches[k:]))
    return 1 - k_star / n


def _es_open_unlearning_loop(matches):
    """Literal transcription of the floored loop: k over 0..T-1, break on a full match."""
    n = len(matches)
    for k in range(n):
        if all(matches[k:]):
            break
    return 1 - k / n


@pytest.mark.parametrize("length", range(1, 7))
def test_extraction_strength_agrees_with_literal_definitions(length):
    for matches in itertools.product([False, True], repeat=length):
        assert extraction_strength(matches) == pytest.approx(_es_by_definition(matches))
        assert extraction_strength(matches, floor_one_token=True) == pytest.approx(
            _es_open_unlearning_loop(matches)
        )


def test_extraction_strength_accepts_numpy_bools():
    import numpy as np

    assert extraction_strength(np.array([0, 1, 1]) == 1) == pytest.approx(2 / 3)


def test_extraction_strength_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        extraction_strength([])
    with pytest.raises(ValueError, match="empty"):
        extraction_strength([], floor_one_token=True)


# ---- exact memorisation ------------------------------------------------------


def test_exact_memorization():
    # 3 of 5 positions match -> 0.6 (order does not matter, unlike ES)
    assert exact_memorization([T, F, T, F, T]) == pytest.approx(0.6)
    assert exact_memorization([F, F]) == 0.0
    assert exact_memorization([T]) == 1.0
    with pytest.raises(ValueError, match="empty"):
        exact_memorization([])


# ---- ROUGE-L recall ----------------------------------------------------------


def test_rouge_l_recall_known_pair():
    # reference 6 tokens, LCS "the cat sat" = 3 -> 3/6
    assert rouge_l_recall("the cat sat", "the cat sat on the mat") == pytest.approx(0.5)
    # prediction contains the whole reference (plus extra words) -> recall 1
    assert rouge_l_recall("well the cat sat on the mat today", "the cat sat on the mat") == 1.0


def test_rouge_l_recall_is_subsequence_not_bag():
    # reference "a b c d", prediction "d c b a": LCS length 1 -> 1/4
    assert rouge_l_recall("d c b a", "a b c d") == pytest.approx(0.25)


def test_rouge_l_recall_lowercases_and_stems():
    # "Cats" -> "cat", "sitting" -> "sit" with the Porter stemmer: LCS 2 of 2
    assert rouge_l_recall("the cat sits", "Cats sitting") == 1.0


def test_rouge_l_recall_edge_cases():
    assert rouge_l_recall("", "the cat") == 0.0
    with pytest.raises(ValueError, match="blank"):
        rouge_l_recall("the cat", "   ")
    with pytest.raises(TypeError, match="str"):
        rouge_l_recall(["the", "cat"], "the cat")
