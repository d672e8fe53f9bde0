"""Retain-model references for forget quality: per-item truth ratios R of a retain model.

Two formats are read:

* ours (``unlearn-bench reference``)::

    {"format": "unlearn-bench/retain-reference/v1",
     "tasks": {"unlearn_tofu_forget01": {"questions": [...], "truth_ratio": [R, ...]}}}

* open-unlearning's retain log: ``{"forget_truth_ratio": {"value_by_index": {"0": {"score": R}, ...}}}``
  (raw wrong/correct ratios, the same orientation as ours).
"""

from __future__ import annotations

import json
from pathlib import Path

FORMAT = "unlearn-bench/retain-reference/v1"


class ReferenceError(ValueError):
    """An unreadable retain reference, or one whose documents do not match the task's."""


def load_reference(path: str | Path, task: str, questions: list[str]) -> list[float]:
    """The reference's per-item R, in the task's document order, checked against ``questions``."""
    data = _read(Path(path))
    if data.get("format") == FORMAT:
        return _ours(data, path, task, questions)
    if "forget_truth_ratio" in data:
        return _open_unlearning(data, path, len(questions))
    raise ReferenceError(f"{path}: neither an unlearn-bench reference nor an open-unlearning retain log")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceError(f"retain_ref {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ReferenceError(f"retain_ref {path} is not readable JSON: {error}") from None
    if not isinstance(data, dict):
        raise ReferenceError(f"retain_ref {path}: expected a JSON object")
    return data


def _ours(data: dict, path, task: str, questions: list[str]) -> list[float]:
    entry = data.get("tasks", {}).get(task)
    if entry is None:
        raise ReferenceError(f"retain_ref {path} has no entry for {task}; it has {sorted(data.get('tasks', {}))}")
    if entry["questions"] != questions:
        raise ReferenceError(
            f"retain_ref {path} for {task} covers {len(entry['questions'])} documents that do not match "
            f"the task's {len(questions)} (different split or data); rebuild it from a run on the same data"
        )
    return [float(value) for value in entry["truth_ratio"]]


def _open_unlearning(data: dict, path, count: int) -> list[float]:
    by_index = data["forget_truth_ratio"].get("value_by_index", {})
    if sorted(by_index, key=int) != [str(i) for i in range(count)]:
        raise ReferenceError(
            f"retain_ref {path} (open-unlearning log) has {len(by_index)} items, the task has {count} documents"
        )
    return [float(by_index[str(i)]["score"]) for i in range(count)]


def reference_payload(per_task: dict[str, list[tuple[str, float]]]) -> dict:
    """Our reference file's content from per-task (question, R) pairs in document order."""
    tasks = {task: {"questions": [q for q, _ in items], "truth_ratio": [r for _, r in items]}
             for task, items in per_task.items()}
    return {"format": FORMAT, "tasks": tasks}


# --- Membership inference: the retain model's AUCs, for privleak ------------------------------------
# Our format stores one entry per MIA task beside the truth-ratio entries:
#   "unlearn_tofu_mia_forget01": {"auc_loss": a, "auc_zlib": a, "auc_mink": a, "auc_minkpp": a or null,
#                                 "members": 40, "nonmembers": 40}
# open-unlearning's retain log gives Min-K% only: {"mia_min_k": {"agg_value": a, "forget": {...}, ...}}.

MIA_KEYS = ("auc_loss", "auc_zlib", "auc_mink", "auc_minkpp")
PRIVLEAK_REFERENCE_KEY = "auc_mink"


def load_mia_reference(path: str | Path, task: str, members: int, nonmembers: int) -> dict[str, float]:
    """The retain model's AUCs for ``task`` (at least ``auc_mink``), checked against the task's document counts."""
    data = _read(Path(path))
    if data.get("format") == FORMAT:
        aucs = _ours_mia(data, path, task, members, nonmembers)
    elif "mia_min_k" in data:
        aucs = _open_unlearning_mia(data, path, members, nonmembers)
    else:
        raise ReferenceError(f"{path}: neither an unlearn-bench reference nor an open-unlearning retain log")
    value = aucs.get(PRIVLEAK_REFERENCE_KEY)
    if value is None or not 0.0 <= value < 1.0:
        raise ReferenceError(f"retain_ref {path} for {task}: {PRIVLEAK_REFERENCE_KEY} must be an AUC in [0, 1), got {value!r}")
    return aucs


def _ours_mia(data: dict, path, task: str, members: int, nonmembers: int) -> dict[str, float]:
    entry = data.get("tasks", {}).get(task)
    if entry is None:
        raise ReferenceError(
            f"retain_ref {path} has no entry for {task}; it has {sorted(data.get('tasks', {}))}. "
            f"Evaluate the retain model on {task} too (with --log_samples) and rebuild it with `unlearn-bench reference`"
        )
    if (entry.get("members"), entry.get("nonmembers")) != (members, nonmembers):
        raise ReferenceError(
            f"retain_ref {path} for {task} was computed on {entry.get('members')} members and "
            f"{entry.get('nonmembers')} non-members, the task has {members} and {nonmembers} "
            "(different split, data or a --limit run); rebuild it from a full run on the same data"
        )
    return {key: float(entry[key]) for key in MIA_KEYS if entry.get(key) is not None}


def _open_unlearning_mia(data: dict, path, members: int, nonmembers: int) -> dict[str, float]:
    log = data["mia_min_k"]
    counts = tuple(len(log.get(split, {}).get("value_by_index", {})) for split in ("forget", "holdout"))
    if any(counts) and counts != (members, nonmembers):
        raise ReferenceError(
            f"retain_ref {path} (open-unlearning log) scored {counts[0]} forget and {counts[1]} holdout items, "
            f"the task has {members} and {nonmembers}"
        )
    return {PRIVLEAK_REFERENCE_KEY: float(log["agg_value"])}


def mia_reference_entry(aucs: dict[str, float], members: int, nonmembers: int) -> dict:
    """One MIA task's entry in our reference file (a NaN AUC is stored as null)."""
    entry = {key: None if value is None or value != value else float(value) for key, value in aucs.items()}
    return entry | {"members": members, "nonmembers": nonmembers}
