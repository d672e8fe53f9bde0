"""Pure metric functions for LLM-unlearning evaluation (numpy / scipy / rouge-score only).

Formulas, sources and directions: docs/metrics_functions.md.
"""

from .aggregate import mean
from .fluency import rep3, token_entropy
from .memorization import exact_memorization, extraction_strength
from .mia import (
    loss_score,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    roc_auc,
    zlib_score,
)
from .rouge import rouge_l_recall
from .tofu import (
    forget_quality,
    model_utility,
    normalised_probability,
    probability,
    truth_ratio,
    truth_ratio_closer_to_one,
    truth_ratio_true_better,
)

__all__ = [
    "exact_memorization",
    "extraction_strength",
    "forget_quality",
    "loss_score",
    "mean",
    "min_k_plus_plus_score",
    "min_k_score",
    "model_utility",
    "normalised_probability",
    "privleak",
    "probability",
    "rep3",
    "roc_auc",
    "rouge_l_recall",
    "token_entropy",
    "truth_ratio",
    "truth_ratio_closer_to_one",
    "truth_ratio_true_better",
    "zlib_score",
]
