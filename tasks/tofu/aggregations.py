"""Corpus-level aggregations of the TOFU tasks (lm-eval gives them every per-document value)."""

from __future__ import annotations

import logging
import math

from unlearn_metrics import tofu

logger = logging.getLogger(__name__)

UTILITY_SPLITS = ("retain", "ra", "wf")


def forget_quality(items: list[dict], reference: list[float] | None = None) -> float:
    """KS-test p-value between this model's per-item R and the retain model's R on the same documents."""
    if reference is None:
        logger.warning(
            "forget_quality is NaN: no retain reference; pass --metadata '{\"retain_ref\": \"ref.json\"}' "
            "(made by `unlearn-bench reference`)"
        )
        return math.nan
    ratios = [item["truth_ratio"] for item in items]
    matched = [reference[item["index"]] for item in items]
    return tofu.forget_quality(ratios, matched)


def model_utility(items: list[tuple]) -> float:
    """Harmonic mean of the nine means: probability, ROUGE-L recall and truth ratio on retain, ra, wf."""
    columns = {split: [] for split in UTILITY_SPLITS}
    for split, *values in items:
        columns[split].append(values)
    missing = [split for split, rows in columns.items() if not rows]
    if missing:
        logger.warning("model_utility is NaN: no documents of %s were evaluated (see --limit)", missing)
        return math.nan
    means = [sum(column) / len(column) for rows in columns.values() for column in zip(*rows)]
    return tofu.model_utility(means)


def answer_tokens(items: list[dict]) -> float:
    """Mean number of answer tokens scored for probabilities; each document's entry (in ``--log_samples``)
    also holds the scored texts, the generation prompt and the label positions."""
    return sum(stop - start for start, stop in (item["prob_labels"] for item in items)) / len(items)
