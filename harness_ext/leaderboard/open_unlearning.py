"""open-unlearning's TOFU result files (``TOFU_EVAL.json``, ``TOFU_SUMMARY.json``) read as a :class:`Run`.

Each metric is put where our tasks report the same quantity (the table in docs/leaderboard.md); keys
with no counterpart stay under their own names in the pseudo-task ``open_unlearning``. The run is
marked as computed under the ``open-unlearning`` convention.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness_ext.leaderboard.checks import FORGET_SPLITS, normal_split
from harness_ext.leaderboard.columns import UNMAPPED_TASK
from harness_ext.leaderboard.runs import LeaderboardError, Run, read_json

EVAL_FILE, SUMMARY_FILE = "TOFU_EVAL.json", "TOFU_SUMMARY.json"
FILES = (EVAL_FILE, SUMMARY_FILE)  # when a folder has both, the first (it has per-item values) is read
CONVENTION = "open-unlearning"
SPLIT_SIZES = {40: "forget01", 200: "forget05", 400: "forget10"}  # forget questions per split

# open-unlearning key -> (our task, with {split} for the forget split; our metric key)
KEYS = {
    "forget_Q_A_Prob": ("unlearn_tofu_{split}", "prob"),
    "forget_Q_A_ROUGE": ("unlearn_tofu_{split}", "rougeL_recall"),
    "forget_truth_ratio": ("unlearn_tofu_{split}", "truth_ratio"),
    "extraction_strength": ("unlearn_tofu_{split}", "es"),
    "exact_memorization": ("unlearn_tofu_{split}", "em"),
    "forget_quality": ("unlearn_tofu_{split}", "forget_quality"),
    "model_utility": ("unlearn_tofu_utility", "model_utility"),
    "retain_Q_A_Prob": ("unlearn_tofu_utility", "prob_retain"),
    "retain_Q_A_ROUGE": ("unlearn_tofu_utility", "rougeL_recall_retain"),
    "retain_Truth_Ratio": ("unlearn_tofu_utility", "truth_ratio_retain"),
    "ra_Q_A_Prob_normalised": ("unlearn_tofu_utility", "prob_ra"),
    "ra_Q_A_ROUGE": ("unlearn_tofu_utility", "rougeL_recall_ra"),
    "ra_Truth_Ratio": ("unlearn_tofu_utility", "truth_ratio_ra"),
    "wf_Q_A_Prob_normalised": ("unlearn_tofu_utility", "prob_wf"),
    "wf_Q_A_ROUGE": ("unlearn_tofu_utility", "rougeL_recall_wf"),
    "wf_Truth_Ratio": ("unlearn_tofu_utility", "truth_ratio_wf"),
    "privleak": ("unlearn_tofu_mia_{split}", "privleak"),
    "mia_min_k": ("unlearn_tofu_mia_{split}", "auc_mink"),
    "mia_min_k_plus_plus": ("unlearn_tofu_mia_{split}", "auc_minkpp"),
    "mia_loss": ("unlearn_tofu_mia_{split}", "auc_loss"),
    "mia_zlib": ("unlearn_tofu_mia_{split}", "auc_zlib"),
}


def is_open_unlearning(path: Path) -> bool:
    return Path(path).name in FILES


def aggregates(path: Path) -> tuple[dict[str, float], int | None]:
    """``{key: value}`` (None → NaN) and the number of forget questions when per-item values say it."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise LeaderboardError(f"{path}: expected a JSON object of open-unlearning metrics, got {type(data).__name__}")
    values, sizes = {}, set()
    for key, entry in data.items():
        if Path(path).name == EVAL_FILE:
            if not isinstance(entry, dict) or "agg_value" not in entry:
                raise LeaderboardError(f"{path}: metric {key!r} has no 'agg_value' (is it open-unlearning's {EVAL_FILE}?)")
            if key.startswith("forget_") and isinstance(entry.get("value_by_index"), dict):
                sizes.add(len(entry["value_by_index"]))
            entry = entry["agg_value"]
        values[key] = checked_number(path, key, entry)
    if len(sizes) > 1:
        raise LeaderboardError(f"{path}: forget metrics have different numbers of items ({sorted(sizes)})")
    return values, next(iter(sizes), None)


def checked_number(path: Path, key: str, value) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LeaderboardError(f"{path}: metric {key!r} is {value!r}, not a number or null")
    return float(value)


def forget_split(path: Path, items: int | None, forget: str | None) -> str:
    """The split the per-item values imply (it must agree with ``--forget``), else ``--forget``."""
    if items is not None:
        if items not in SPLIT_SIZES:
            raise LeaderboardError(f"{path}: {items} forget items match no TOFU split ({', '.join(FORGET_SPLITS)})")
        split = SPLIT_SIZES[items]
        if forget is not None and normal_split(forget) != split:
            raise LeaderboardError(f"{path}: its {items} forget items are {split}, not --forget {forget}")
        return split
    if forget is None:
        raise LeaderboardError(f"{path} has no per-item values to tell its forget split: pass --forget")
    return normal_split(forget)


def convert(values: dict[str, float], split: str) -> dict[str, dict]:
    """lm-eval shaped ``results``: our keys under our tasks, the others under ``open_unlearning``."""
    results: dict[str, dict] = {}
    for key, value in values.items():
        task, metric = KEYS.get(key, (UNMAPPED_TASK, key))
        results.setdefault(task.format(split=split), {})[f"{metric},none"] = value
    return results


def load(path: Path, forget: str | None = None) -> Run:
    """One open-unlearning result file as a run named after its folder."""
    path = Path(path)
    values, items = aggregates(path)
    split = forget_split(path, items, forget)
    results = {"results": convert(values, split), "versions": {}, "config": {"model": "open-unlearning"},
               "date": path.stat().st_mtime}
    about = {"convention": CONVENTION, "task versions": f"open-unlearning TOFU evaluator ({path.name})",
             "data source": f"TOFU {split} (open-unlearning)"}
    return Run(path, results, {}, about=about)
