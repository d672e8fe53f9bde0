"""Corpus-level aggregations of the MIA tasks: each gets every document's ``(member, score)``."""

from __future__ import annotations

import logging
import math

from unlearn_metrics import mia

logger = logging.getLogger(__name__)

#: The AUC that PrivLeak compares with the retain model's: Min-K% (k = 0.4), as open-unlearning's
#: TOFU default computes ``privleak`` from ``mia_min_k`` (MUSE's own tables use Min-K%++).
PRIVLEAK_INPUT = "auc_mink"


def auc(items: list[tuple[bool, float | None]]) -> float:
    """ROC-AUC of telling members (forget) from non-members (holdout); NaN if a class is absent, or
    if a score is unknown (None: Min-K% of a plain-path answer with a token inside a character)."""
    unknown = sum(score is None for _, score in items)
    if unknown:
        logger.warning(
            "MIA AUC is NaN: %d documents' per-token log-probs are unknown on the plain lm-eval path "
            "(a token inside a character); `unlearn-bench eval` computes them", unknown
        )
        return math.nan
    members = [score for member, score in items if member]
    nonmembers = [score for member, score in items if not member]
    if not members or not nonmembers:
        logger.warning(
            "MIA AUC is NaN: %d member and %d non-member documents were evaluated; both are needed "
            "(documents alternate forget/holdout, so use --limit 2 or more)", len(members), len(nonmembers)
        )
        return math.nan
    return mia.roc_auc(members, nonmembers)


def auc_minkpp(items: list[tuple[bool, float | None]]) -> float:
    """:func:`auc` of the Min-K%++ scores; NaN when the model gave no next-token distribution statistics."""
    if any(score is None for _, score in items):
        logger.warning(
            "auc_minkpp is NaN: Min-K%%++ needs the mean and variance of log p under the model's "
            "next-token distribution, which only the per-token-details path returns; evaluate through "
            "`unlearn-bench eval` (model unlearn_hf) instead of a plain lm-eval model"
        )
        return math.nan
    return auc(items)


def privleak(items: list[tuple[bool, float]], reference: dict[str, float] | None = None) -> float:
    """MUSE PrivLeak of this model's Min-K% AUC against the retain model's (NaN without a reference)."""
    if reference is None:
        logger.warning(
            "privleak is NaN: no retain reference; pass --metadata '{\"retain_ref\": \"ref.json\"}' "
            "(made by `unlearn-bench reference` from the retain model's run)"
        )
        return math.nan
    value = auc(items)
    return math.nan if math.isnan(value) else mia.privleak(value, reference[PRIVLEAK_INPUT])
