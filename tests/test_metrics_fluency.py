"""Hand-computed checks for unlearn_metrics.fluency."""

import doctest
import math

import pytest

from unlearn_metrics import fluency
from unlearn_metrics.fluency import rep3, token_entropy


def test_doctests():
    assert doctest.testmod(fluency).failed == 0


# ---- token entropy -----------------------------------------------------------


def test_token_entropy_extremes():
    assert token_entropy([7, 7, 7, 7, 7]) == 0.0  # constant -> 0
    assert token_entropy(list(range(10))) == 1.0  # all distinct -> log 10 / log 10 = 1
    assert token_entropy(["x", "y"]) == 1.0


def test_token_entropy_hand_computed():
    # tokens a a b b (n = 4): f = (1/2, 1/2), H = ln 2 ; / ln 4 = 1/2
    assert token_entropy(["a", "a", "b", "b"]) == pytest.approx(0.5)
    # tokens a a b (n = 3): H = -(2/3 ln 2/3 + 1/3 ln 1/3) = ln 3 - (2/3) ln 2 ; / ln 3
    expected = (math.log(3) - (2 / 3) * math.log(2)) / math.log(3)
    assert token_entropy([1, 1, 2]) == pytest.approx(expected)  # ~0.5794


def test_token_entropy_short_inputs_are_zero():
    assert token_entropy([]) == 0.0
    assert token_entropy([42]) == 0.0


# ---- rep3 --------------------------------------------------------------------


def test_rep3_hand_computed():
    # words: i like it i like it i  (7 words -> 5 trigrams)
    # (i like it) (like it i) (it i like) (i like it) (like it i) -> 3 distinct
    # 1 - 3/5 = 0.4
    assert rep3("I like it i LIKE it i") == pytest.approx(0.4)
    # no repeats
    assert rep3("the quick brown fox jumps") == 0.0
    # "a a a a a": 3 trigrams, all (a a a) -> 1 - 1/3
    assert rep3("a a a a a") == pytest.approx(2 / 3)


def test_rep3_whitespace_split_and_short_text():
    # tabs/newlines are whitespace; punctuation stays attached to words
    assert rep3("a b c\na\tb c") == pytest.approx(0.25)
    assert rep3("a b. c a b c") == 0.0
    assert rep3("") == 0.0
    assert rep3("only two") == 0.0
