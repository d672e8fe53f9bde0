"""ROUGE-L recall via Google's ``rouge_score`` package."""

from __future__ import annotations

import functools

from rouge_score import rouge_scorer


@functools.lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall: LCS(prediction, reference) / len(reference), in tokens.

    Source: Lin 2004; TOFU / MUSE / open-unlearning use the ``rouge_score``
    package's rougeL (not rougeLsum) recall with ``use_stemmer=True``. Its
    tokenizer lowercases and keeps only [a-z0-9] runs, so non-Latin text
    scores 0. An empty prediction scores 0.0; a blank reference raises.
    Range [0, 1]. Higher = more of the reference reproduced (better on retain
    data, worse on forget data).

    >>> rouge_l_recall("the cat sat", "the cat sat on the mat")  # LCS 3 / 6 tokens
    0.5
    """
    if not isinstance(prediction, str) or not isinstance(reference, str):
        raise TypeError(
            f"prediction and reference must be str; got {type(prediction).__name__} "
            f"and {type(reference).__name__} (decode token ids first)"
        )
    if not reference.strip():
        raise ValueError("reference is blank; ROUGE-L recall is undefined for an empty reference")
    return float(_scorer().score(target=reference, prediction=prediction)["rougeL"].recall)
