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


def markdown(table: pd.DataFrame, columns: tuple[Column, ...], blanks: dict, tau: float) -> str:
    """The table (blank cells marked ¹ in the header), then the footnotes and each column's source."""
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
    return "\n".join(lines)
