"""The table as Markdown: formatted cells, ``¹`` on columns with blanks, footnotes and each column's source."""

from __future__ import annotations

import math

import pandas as pd

from harness_ext.leaderboard.columns import Column
from harness_ext.leaderboard.table import PERCENT


def format_cell(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column.endswith(PERCENT):
        return f"{value:.1f}%"
    if column in ("α", "τ"):
        return f"{value:.4g}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(table: pd.DataFrame, columns: tuple[Column, ...], blanks: dict, tau: float,
             controls: dict[str, str]) -> str:
    """The table (blank cells marked ¹ in the header), then the footnotes, each column's source and, per
    model, where its control.json was read (``controls``: model → "control: <path>" or where it was looked for)."""
    cells = pd.DataFrame({name: [format_cell(name, value) for value in table[name]] for name in table.columns})
    measured = set(table.columns[table.columns.get_loc(columns[0].name):])
    cells.columns = [f"{name} ¹" if name in measured and (cells[name] == "").any() else name for name in table.columns]
    sources = "; ".join(f"{column.name} = `{column.task}` {column.metric}" for column in columns)
    align = ["right" if name in measured or name in ("α", "τ") else "left" for name in table.columns]
    lines = [cells.to_markdown(index=False, disable_numparse=True, colalign=align), ""]
    if blanks:
        lines += ["¹ Blank = not measured (never 0); % target is also blank when the target's value is 0:", ""]
        models = list(table["model"])
        lines += [f"- {why} — {', '.join(sorted(names, key=models.index))}" for why, names in blanks.items()]
        lines += [""]
    lines += [f"Sources: {sources}. matched: retain ES ≥ τ × the target's (τ = {tau:g}).", ""]
    lines += ["method, control, τ and α come from each checkpoint's control.json:", ""]
    lines += [f"- {model}: {controls[model]}" for model in table["model"]] + [""]
    return "\n".join(lines)
