"""Retain-model references: per-item truth ratios R (forget quality) and MIA AUCs (privleak) of a retain model.

Two formats are read:

* ours (``unlearn-bench reference``), one entry per task, each with the settings it was computed under
  (the chat template and system instruction as the task recorded them in its metadata ``prompt_settings``)::

    {"format": "unlearn-bench/retain-reference/v2",
     "tasks": {"unlearn_tofu_forget01": {
         "settings": {"convention": "default", "task_version": 1, "chat_template": null,
                      "system_instruction": null},
         "provenance": {"model": "ckpt/retain", "dtype": "float32", "limit": null, "attack": null,
                        "results_file": "results_2026-01-01T00-00-00.json"},
         "questions": [...], "truth_ratio": [R, ...]}}}

  A task refuses an entry whose ``settings`` differ from its own run's (convention, task version, chat
  template, system instruction), naming each differing field with both values. Version 1 files (no
  settings) are refused with how to rebuild them.

* open-unlearning's retain logs, only in runs with ``convention: open-unlearning`` (their numbers were
  computed under that convention): ``{"forget_truth_ratio": {"value_by_index": {"0": {"score": R}}}}``
  (raw wrong/correct ratios, our orientation) and ``{"mia_min_k": {"agg_value": a, ...}}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from unlearn_tasks import prompts
from unlearn_tasks.errors import UnlearnBenchError

FORMAT = "unlearn-bench/retain-reference/v2"
OLD_FORMATS = ("unlearn-bench/retain-reference/v1",)
#: Task metadata key where a task records the settings known only once lm-eval renders its first prompt
#: (the chat template and system instruction: checked then, with RetainReference.check).
PROMPT_SETTINGS_KEY = "prompt_settings"
#: A fixed conversation whose rendering identifies a chat template (its text, arguments and pinned date).
PROBE_CONVERSATION = ({"role": "system", "content": "\u2063system\u2063"}, {"role": "user", "content": "\u2063user\u2063"})
REBUILD = ("rebuild it with `unlearn-bench reference RUN --out FILE` from the retain model's run "
           "(lm_eval --output_path RUN --log_samples, same task version and --metadata convention)")


class RetainReferenceError(UnlearnBenchError, ValueError):
    """An unreadable retain reference, or one made on other documents or under other settings than the run's."""


def chat_template_setting(render: Callable[..., str] | None) -> str | None:
    """The ``chat_template`` setting: None when no chat template is applied, else ``sha256:<hex>`` of
    :data:`PROBE_CONVERSATION` as ``render`` (lm-eval's renderer, date pinned) writes it."""
    if render is None:
        return None
    return "sha256:" + hashlib.sha256(render([dict(turn) for turn in PROBE_CONVERSATION]).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RetainReference:
    """One task's reference values, and the settings it was computed under (None: an open-unlearning log)."""

    path: str
    task: str
    values: list[float] | dict[str, float]
    settings: dict | None

    def check(self, run: dict) -> None:
        """Refuse the reference if a setting in ``run`` differs from the reference's (an open-unlearning log
        records none)."""
        if self.settings is not None:
            _check_settings(self.settings, run, self.path, self.task)


def _check_settings(settings: dict, run: dict, path, task: str) -> None:
    """One error naming every setting of ``run`` that differs from the reference's, with both values."""
    differing = [f"{key}: reference {settings.get(key)!r}, this run {value!r}"
                 for key, value in run.items() if settings.get(key) != value]
    if differing:
        raise RetainReferenceError(
            f"retain_ref {path} for {task} was computed under other settings ({'; '.join(differing)}); {REBUILD}")


def load_reference(path: str | Path, task: str, questions: list[str], run: dict) -> RetainReference:
    """The reference's per-item R in the task's document order, checked against ``questions`` and the
    run's settings ``run`` (those known before the first prompt; the rest are checked later with ``check``)."""
    data = _read(Path(path))
    with _well_formed(path, task):
        if "forget_truth_ratio" in data and "format" not in data:
            _open_unlearning_allowed(path, task, run)
            return RetainReference(str(path), task, _ratios(_open_unlearning(data, path, len(questions))), None)
        entry = _entry(data, path, task, run)
        if entry["questions"] != questions:
            raise RetainReferenceError(
                f"retain_ref {path} for {task} covers {len(entry['questions'])} documents that do not match "
                f"the task's {len(questions)} (different split or data); rebuild it from a run on the same data"
            )
        return RetainReference(str(path), task, _ratios(entry["truth_ratio"], len(questions)), entry["settings"])


@contextlib.contextmanager
def _well_formed(path, task: str):
    """A hand-edited or truncated reference (a missing key, a value of the wrong type) is one error."""
    try:
        yield
    except RetainReferenceError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RetainReferenceError(
            f"retain_ref {path} is malformed for {task} ({type(error).__name__}: {error}); {REBUILD}") from None


def _ratios(values: list, count: int | None = None) -> list[float]:
    """Truth ratios as floats: one per document, each finite and ≥ 0."""
    ratios = [float(value) for value in values]
    if count is not None and len(ratios) != count:
        raise ValueError(f"{len(ratios)} truth ratios for {count} documents")
    bad = next((value for value in ratios if not (math.isfinite(value) and value >= 0)), None)
    if bad is not None:
        raise ValueError(f"a truth ratio must be a finite number ≥ 0, got {bad}")
    return ratios


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RetainReferenceError(f"retain_ref {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RetainReferenceError(f"retain_ref {path} is not readable JSON: {error}") from None
    if not isinstance(data, dict):
        raise RetainReferenceError(f"retain_ref {path}: expected a JSON object")
    return data


def _entry(data: dict, path, task: str, run: dict) -> dict:
    """Our file's entry for ``task``, after checking the format and the settings known now."""
    if data.get("format") in OLD_FORMATS:
        raise RetainReferenceError(
            f"retain_ref {path} is a {data['format']} file, which does not record the settings it was "
            f"computed under; {REBUILD}"
        )
    if data.get("format") != FORMAT:
        raise RetainReferenceError(
            f"retain_ref {path}: neither an unlearn-bench reference ({FORMAT}) nor an open-unlearning retain log"
        )
    entry = data.get("tasks", {}).get(task)
    if entry is None:
        raise RetainReferenceError(
            f"retain_ref {path} has no entry for {task}; it has {sorted(data.get('tasks', {}))}. Evaluate the "
            f"retain model on {task} too (with --log_samples) and rebuild it with `unlearn-bench reference`"
        )
    entry = {**entry, "settings": entry.get("settings") or {}}
    _check_settings(entry["settings"], run, path, task)
    return entry


def _open_unlearning_allowed(path, task: str, run: dict) -> None:
    if run.get("convention") != prompts.OPEN_UNLEARNING:
        raise RetainReferenceError(
            f"retain_ref {path} is an open-unlearning retain log, computed under open-unlearning's convention; "
            f"{task} runs under convention {run.get('convention')!r}. Pass --metadata convention=open-unlearning, "
            f"or build a reference under this run's convention with `unlearn-bench reference`"
        )


def _open_unlearning(data: dict, path, count: int) -> list[float]:
    by_index = data["forget_truth_ratio"].get("value_by_index", {})
    if sorted(by_index, key=int) != [str(i) for i in range(count)]:
        raise RetainReferenceError(
            f"retain_ref {path} (open-unlearning log) has {len(by_index)} items, the task has {count} documents"
        )
    return [float(by_index[str(i)]["score"]) for i in range(count)]


def reference_payload(entries: dict[str, dict]) -> dict:
    """Our reference file's content from per-task entries (:func:`truth_ratio_entry`, :func:`mia_reference_entry`)."""
    return {"format": FORMAT, "tasks": entries}


def truth_ratio_entry(items: list[tuple[str, float]], settings: dict, provenance: dict) -> dict:
    """One TOFU forget task's entry from its (question, R) pairs in document order."""
    return {"settings": settings, "provenance": provenance,
            "questions": [question for question, _ in items], "truth_ratio": [ratio for _, ratio in items]}


# --- Membership inference: the retain model's AUCs, for privleak ------------------------------------
# Our format stores one entry per MIA task beside the truth-ratio entries:
#   "unlearn_tofu_mia_forget01": {"settings": {...}, "provenance": {...}, "auc_loss": a, "auc_zlib": a,
#                                 "auc_mink": a, "auc_minkpp": a or null, "members": 40, "nonmembers": 40}
# open-unlearning's retain log gives Min-K% only: {"mia_min_k": {"agg_value": a, "forget": {...}, ...}}.

MIA_KEYS = ("auc_loss", "auc_zlib", "auc_mink", "auc_minkpp")
PRIVLEAK_REFERENCE_KEY = "auc_mink"


def load_mia_reference(path: str | Path, task: str, members: int, nonmembers: int, run: dict) -> RetainReference:
    """The retain model's AUCs for ``task`` (at least ``auc_mink``), checked against the task's document
    counts and the run's settings ``run`` (as in :func:`load_reference`)."""
    data = _read(Path(path))
    with _well_formed(path, task):
        if "mia_min_k" in data and "format" not in data:
            _open_unlearning_allowed(path, task, run)
            aucs, settings = _open_unlearning_mia(data, path, members, nonmembers), None
        else:
            entry = _entry(data, path, task, run)
            aucs, settings = _ours_mia(entry, path, task, members, nonmembers), entry["settings"]
    value = aucs.get(PRIVLEAK_REFERENCE_KEY)
    if value is None or not 0.0 <= value < 1.0:
        raise RetainReferenceError(
            f"retain_ref {path} for {task}: {PRIVLEAK_REFERENCE_KEY} must be an AUC in [0, 1), got {value!r}")
    return RetainReference(str(path), task, aucs, settings)


def _ours_mia(entry: dict, path, task: str, members: int, nonmembers: int) -> dict[str, float]:
    if (entry.get("members"), entry.get("nonmembers")) != (members, nonmembers):
        raise RetainReferenceError(
            f"retain_ref {path} for {task} was computed on {entry.get('members')} members and "
            f"{entry.get('nonmembers')} non-members, the task has {members} and {nonmembers} "
            "(different split, data or a --limit run); rebuild it from a full run on the same data"
        )
    return {key: float(entry[key]) for key in MIA_KEYS if entry.get(key) is not None}


def _open_unlearning_mia(data: dict, path, members: int, nonmembers: int) -> dict[str, float]:
    log = data["mia_min_k"]
    counts = tuple(len(log.get(split, {}).get("value_by_index", {})) for split in ("forget", "holdout"))
    if any(counts) and counts != (members, nonmembers):
        raise RetainReferenceError(
            f"retain_ref {path} (open-unlearning log) scored {counts[0]} forget and {counts[1]} holdout items, "
            f"the task has {members} and {nonmembers}"
        )
    return {PRIVLEAK_REFERENCE_KEY: float(log["agg_value"])}


def mia_reference_entry(aucs: dict[str, float], members: int, nonmembers: int, settings: dict,
                        provenance: dict) -> dict:
    """One MIA task's entry in our reference file (a NaN AUC is stored as null)."""
    entry = {key: None if value is None or value != value else float(value) for key, value in aucs.items()}
    return {"settings": settings, "provenance": provenance} | entry | {"members": members, "nonmembers": nonmembers}
