"""PrivLeak's corpus-level aggregation and where the retrained model's AUC comes from."""

from __future__ import annotations

import logging
import math

from unlearn_metrics import muse
from unlearn_tasks.errors import MetadataError
from unlearn_tasks.mia.aggregations import auc
from unlearn_tasks.tofu.reference import PRIVLEAK_REFERENCE_KEY, load_mia_reference

logger = logging.getLogger(__name__)

#: Metadata key for the retrained model's AUC, in MUSE's orientation (e.g. 0.4772 for its News table).
RETRAIN_KEY = "privleak_auc_retrain"


def retrain_auc(metadata: dict, task: str, documents, settings: dict) -> float | None:
    """A_retrain in MUSE's orientation: metadata ``privleak_auc_retrain``, else one minus the retain
    model's Min-K% AUC from ``retain_ref`` (``unlearn-bench reference``, made under the run's ``settings``),
    else None."""
    if metadata.get(RETRAIN_KEY) is not None:
        return _given_retrain_auc(metadata[RETRAIN_KEY])
    path = metadata.get("retain_ref")
    if not path:
        return None
    members = sum(1 for doc in documents if doc["member"])
    reference = load_mia_reference(path, task, members, len(documents) - members, settings)
    return muse.muse_auc(reference.values[PRIVLEAK_REFERENCE_KEY])


def _given_retrain_auc(given) -> float:
    try:
        value = float(given)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value <= 1.0:
        raise MetadataError(f"metadata {RETRAIN_KEY} must be an AUC in (0, 1] (MUSE's orientation); got {given!r}")
    return value


def privleak(items: list[tuple[bool, float]], muse_auc_retrain: float | None = None) -> float:
    """MUSE PrivLeak of this model's Min-K% (k = 40 %) AUC; NaN with one warning without A_retrain."""
    if muse_auc_retrain is None:
        logger.warning(
            "privleak is NaN: no retrained model's AUC; pass --metadata '{\"%s\": 0.4772}' (MUSE's News "
            "table; Books 0.5393) or '{\"retain_ref\": \"ref.json\"}' from `unlearn-bench reference`", RETRAIN_KEY
        )
        return math.nan
    value = auc(items)
    return math.nan if math.isnan(value) else muse.privleak(value, muse_auc_retrain)
