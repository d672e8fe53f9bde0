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
