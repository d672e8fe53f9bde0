"""Which runs may share a table, which run is the target or retain model, and which TOFU forget split."""

from __future__ import annotations

import json
from pathlib import Path

from harness_ext.leaderboard.runs import LeaderboardError, Run

DATA_FIELDS = ("dataset_path", "dataset_name", "dataset_kwargs", "test_split", "num_fewshot")
# metadata that leaves documents alone
NOT_DATA = {"version", "token_details", "pretrained", "retain_ref", "config_source", "prompt_settings"}
FORGET_SPLITS = ("forget01", "forget05", "forget10")


def data_signature(run: Run, task: str) -> dict:
    """What fixes a task's documents: its dataset fields, non-model metadata and sample counts."""
    config = run.results.get("configs", {}).get(task, {})
    metadata = config.get("metadata") or {}
    ignored = NOT_DATA | set(run.model_args)
    return {
        **{name: config.get(name) for name in DATA_FIELDS},
        "metadata": {key: value for key, value in sorted(metadata.items()) if key not in ignored},
        "n-samples": run.results.get("n-samples", {}).get(task),
    }


def check_comparable(runs: list[Run]) -> None:
    """Refuse runs whose shared tasks differ in version or data, naming the task and the runs."""
    for kind, read in (("version", lambda run, task: run.results.get("versions", {}).get(task)),
                       ("data", data_signature)):
        seen: dict[str, tuple[Run, str]] = {}
        for run in runs:
            for task in sorted(run.results.get("versions", {})):
                value = json.dumps(read(run, task), sort_keys=True, default=str)
                if task not in seen:
                    seen[task] = (run, value)
                elif seen[task][1] != value:
                    first, first_value = seen[task]
                    raise LeaderboardError(
                        f"task {task}: {kind} differs between {first.path} and {run.path} "
                        f"({difference(json.loads(first_value), json.loads(value))}); "
                        f"evaluate both with the same task {kind} to compare them"
                    )


def difference(first, second) -> str:
    """``a vs b``, or for dicts only the keys that differ."""
    if not (isinstance(first, dict) and isinstance(second, dict)):
        return f"{first} vs {second}"
    keys = sorted(key for key in set(first) | set(second) if first.get(key) != second.get(key))
    return "; ".join(f"{key}: {difference(first.get(key), second.get(key))}" for key in keys)


def find_model(runs: list[Run], wanted: str, role: str) -> Run:
    """The run whose pretrained path, checkpoint folder or lm-eval model folder is ``wanted``."""
    def matches(run: Run) -> bool:
        names = {run.pretrained, Path(run.pretrained).name, run.path.parent.name, run.name}
        same_path = bool(run.pretrained) and Path(run.pretrained).resolve() == Path(wanted).resolve()
        return wanted in names or same_path

    found = [run for run in runs if matches(run)]
    if len(found) != 1:
        known = ", ".join(sorted(run.pretrained or run.name for run in runs))
        problem = "matches no model" if not found else f"matches {len(found)} models"
        raise LeaderboardError(f"--{role} {wanted!r} {problem}; models: {known}")
    return found[0]


def normal_split(forget: str) -> str:
    """``01`` or ``forget01`` → ``forget01``; an unknown split is an error."""
    split = forget if forget.startswith("forget") else f"forget{forget}"
    if split not in FORGET_SPLITS:
        raise LeaderboardError(f"unknown forget split {forget!r}; known: {', '.join(FORGET_SPLITS)}")
    return split


def choose_split(runs: list[Run], forget: str | None) -> str:
    """``forget`` (``01`` or ``forget01``), else the one TOFU forget split the runs were evaluated on."""
    if forget is not None:
        return normal_split(forget)
    present = sorted({split for run in runs for split in FORGET_SPLITS if run.task(f"unlearn_tofu_{split}")})
    if len(present) > 1:
        raise LeaderboardError(f"the runs have several forget splits ({', '.join(present)}); choose one with --forget")
    return present[0] if present else FORGET_SPLITS[0]
