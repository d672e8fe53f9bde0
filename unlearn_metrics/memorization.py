"""Memorisation metrics on teacher-forced greedy matches.

``matches[t]`` is True when the model's argmax prediction at target position t
(given the true prefix) equals the target token t.
"""

from __future__ import annotations

from typing import Sequence


def _as_flags(matches: Sequence[bool]) -> list[bool]:
    flags = [bool(m) for m in matches]
    if not flags:
        raise ValueError(
            "matches is empty; the target has no tokens (check the answer span/tokenisation)"
        )
    return flags


def _matching_suffix_length(flags: Sequence[bool]) -> int:
    """Length of the longest all-True suffix of ``flags``."""
    length = 0
    for flag in reversed(flags):
        if not flag:
            break
        length += 1
    return length


def extraction_strength(matches: Sequence[bool], floor_one_token: bool = False) -> float:
    """Extraction strength: ES = 1 - k*/T, k* = min{k in 0..T : matches[k:] all True}.

    Source: Carlini et al. 2021 (extractability), as defined by Wang et al. 2024,
    "Unlearning with Control" (arXiv 2406.09179): the fraction of the target
    that the model reproduces from the shortest true prefix. Since matches[k:]
    all True means the last T-k tokens match, ES = (length of the all-True
    suffix) / T; the last token wrong gives k* = T and ES = 0.
    ``floor_one_token=True`` reproduces open-unlearning, whose loop runs k over
    0..T-1 only, so k stays T-1 when no suffix matches: ES = max(suffix, 1) / T,
    i.e. a floor of 1/T.
    Range [0, 1] ([1/T, 1] floored). Lower is better on forget data.

    >>> extraction_strength([False, True, True])
    0.6666666666666666
    >>> extraction_strength([True, True, False]), extraction_strength([True, True, False], floor_one_token=True)
    (0.0, 0.3333333333333333)
    """
    flags = _as_flags(matches)
    suffix = _matching_suffix_length(flags)
    if floor_one_token:
        suffix = max(suffix, 1)
    return suffix / len(flags)


def exact_memorization(matches: Sequence[bool]) -> float:
    """Exact memorisation: EM = (1/T) * sum_t matches[t].

    Source: Tirumala et al. 2022 ("Memorization Without Overfitting"), the
    teacher-forced token accuracy used by open-unlearning.
    Range [0, 1]. Lower is better on forget data.

    >>> exact_memorization([True, False, True, True])
    0.75
    """
    flags = _as_flags(matches)
    return sum(flags) / len(flags)
