"""Runs → the table: one row per run, grouped and ordered as Wang et al. 2024 compare methods."""

from __future__ import annotations

import math

import pandas as pd

from harness_ext.leaderboard.columns import UNMAPPED_TASK, Column
from harness_ext.leaderboard.runs import Run, describe, number

PROBE_PREFIX = "unlearn_probe_"
NAN_HINTS = {"forget_quality": " (evaluate with --metadata retain_ref=<reference JSON>)"}
PERCENT = " (% target)"


def metric_value(run: Run, tasks: tuple[str, ...], metric: str) -> tuple[float, str | None]:
    """(value, None), or (NaN, why it is missing)."""
    task = tasks[0]
    scores = run.task(task)
    if scores is None:
        if task == UNMAPPED_TASK:
            return math.nan, "an open-unlearning key with no counterpart in our tasks"
        return probe_mean(run, metric) if task == "unlearn_probes" else (math.nan, f"{task} not evaluated")
    key = f"{metric},none" if f"{metric},none" in scores else next(
        (name for name in scores if name.startswith(f"{metric},")), None)
    if key is None:
        return math.nan, f"{task} has no {metric}"
    value = number(scores[key])
    if math.isnan(value):
        return math.nan, f"{task} reports {metric} as {scores[key]}{NAN_HINTS.get(metric, '')}"
    return value, None


def probe_mean(run: Run, metric: str) -> tuple[float, str | None]:
    """Without the ``unlearn_probes`` group: the plain mean of the probes' own ``metric``."""
    values = [number(scores.get(f"{metric},none")) for task, scores in run.results.get("results", {}).items()
              if task.startswith(PROBE_PREFIX)]
    values = [value for value in values if not math.isnan(value)]
    return (sum(values) / len(values), None) if values else (math.nan, "unlearn_probes not evaluated")


def group_of(role: str | None, facts: dict) -> str:
    if role is not None:
        return "reference"
    if facts["control"] == "none":
        return "plain"
    return f"controlled, τ = {facts['τ']:g}" if not math.isnan(facts["τ"]) else f"controlled ({facts['control']})"


def table_rows(runs: list[Run], roles: dict[int, str], columns: tuple[Column, ...]) -> tuple[list[dict], dict]:
    """One dict per run, and the blank cells: ``"column: why"`` → the models it applies to."""
    rows, blanks = [], {}
    for index, run in enumerate(runs):
        facts = describe(run)
        row = {"group": group_of(roles.get(index), facts), "model": run.name, **facts}
        if index in roles:
            row["method"] = roles[index]
        for column in columns:
            row[column.name], why = metric_value(run, column.tasks, column.metric)
            if why:
                blanks.setdefault(f"{column.name}: {why}", []).append(run.name)
        rows.append(row)
    return rows, blanks


def order(table: pd.DataFrame) -> pd.DataFrame:
    """References (target, retain) first, then plain, then controlled groups; each by forget ES ascending."""
    groups = ["reference", "plain"] + sorted(name for name in table["group"].unique() if name.startswith("controlled"))
    rank = {"target": 0, "retain": 1}
    table = table.assign(
        _group=table["group"].map(groups.index),
        _reference=table["method"].map(rank).fillna(2),
        _missing=table["forget ES"].isna(),
    )
    table = table.sort_values(["_group", "_reference", "_missing", "forget ES", "model"], kind="stable")
    return table.drop(columns=["_group", "_reference", "_missing"]).reset_index(drop=True)


def add_relative(table: pd.DataFrame, columns: tuple[Column, ...], target: pd.Series, tau: float) -> pd.DataFrame:
    """Each utility column also as % of the target's, and whether retain ES meets τ × the target's."""
    ordered = []
    for name in table.columns:
        ordered.append(name)
        if any(column.utility and column.name == name for column in columns):
            reference = target[name]
            percent = f"{name}{PERCENT}"
            table[percent] = 100.0 * table[name] / reference if reference and not math.isnan(reference) else math.nan
            ordered.append(percent)
    bar = tau * target["retain ES"]
    table["matched"] = [None if math.isnan(value) or math.isnan(bar) else value >= bar or math.isclose(value, bar)
                        for value in table["retain ES"]]
    return table[ordered + ["matched"]]


def traces(runs: list[Run]) -> dict[str, dict]:
    """Calibration traces with α (model mixing) from control.json, by model name."""
    return {run.name: run.control for run in runs
            if any("alpha" in step for step in run.control.get("trace") or [])}
