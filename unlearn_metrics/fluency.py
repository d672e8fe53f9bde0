"""Fluency / degeneration metrics for generated text."""

from __future__ import annotations

import collections
import math
from typing import Hashable, Sequence


def token_entropy(tokens: Sequence[Hashable]) -> float:
    """Token entropy: TE = -(1 / log n) * sum_v f_v * log f_v, f_v = count_v / n.

    Source: Yuan et al. 2024 ("A Closer Look at Machine Unlearning for LLMs"):
    Shannon entropy of the token frequency distribution of one generation,
    normalised by log of its length n (natural logs; the base cancels).
    Fewer than 2 tokens (empty or single-token output) is defined as 0.0.
    Range [0, 1]. Higher is better: 0 = one token repeated, 1 = all distinct.

    >>> token_entropy(["a", "b", "c", "d"]), token_entropy(["a", "a", "a"])
    (1.0, 0.0)
    """
    n = len(tokens)
    if n < 2:
        return 0.0
    counts = collections.Counter(tokens).values()
    # H = log n - (1/n) * sum_v c_v log c_v: exact at both ends (all c_v = 1 or one c_v = n).
    entropy = math.log(n) - sum(c * math.log(c) for c in counts) / n
    return min(1.0, max(0.0, entropy / math.log(n)))


def rep3(text: str) -> float:
    """Repeated 3-grams: 1 - (#distinct word 3-grams / #word 3-grams).

    Words are ``text.lower().split()`` (whitespace). Fewer than 3 words gives
    0.0. Source: the rep-n degeneration statistic (Welleck et al. 2020, n=3).
    Range [0, 1). Lower is better: 0 = no 3-gram repeats.

    >>> rep3("a b c a b c")  # 4 trigrams, 3 distinct
    0.25
    """
    words = text.lower().split()
    trigrams = list(zip(words, words[1:], words[2:]))
    if not trigrams:
        return 0.0
    return 1.0 - len(set(trigrams)) / len(trigrams)
