"""The table as one self-contained page: ``leaderboard.html`` (inline CSS and JS, plots as base64 PNG).

The page is built from the same table as leaderboard.md/.csv: one ``<tr class="run">`` per CSV row and
one ``<th>`` per CSV column, in the same order. Tooltips are the columns' rows of docs/metrics.md.
"""

from __future__ import annotations

import base64
import math
from html import escape
from importlib.resources import files
from pathlib import Path

import pandas as pd

from harness_ext.leaderboard.columns import Column
from harness_ext.leaderboard.markdown import format_cell
from harness_ext.leaderboard.runs import Run, differences, run_metadata
from harness_ext.leaderboard.table import PERCENT

RUN_COLUMNS = ("group", "model", "method", "control", "τ", "α")
DIRECTIONS = {"↓": "lower is better (more forgotten)", "↑": "higher is better", "→0": "closer to 0 is better",
              "": "an open-unlearning key with no counterpart here, kept under its own name"}
CAPTIONS = {
    "forget_vs_retain_es.png": "Forget ES (lower forgets more) against retain ES (higher keeps more); "
                               "dashed: τ × the target's retain ES.",
    "alpha_curves.png": "Model mixing: the calibration metric against α; the chosen α dotted.",
    "robustness.png": "Robustness: each metric before and after each attack (docs/robustness.md).",
}
NEAR, FAR = 1 / 3, 2 / 3  # distance to the retain model, as a fraction of the target's


def page(table: pd.DataFrame, columns: tuple[Column, ...], blanks: dict, tau: float, runs: dict[str, Run],
         target: Run, plots: list[Path]) -> str:
    by_name = {column.name: column for column in columns}
    head = header(table, by_name)
    body = "\n".join(table_row(row, by_name, table, tau, runs, target) for _, row in table.iterrows())
    asset = files("harness_ext.leaderboard")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<link rel="icon" href="data:,">', "<title>Unlearning leaderboard</title>",
        f"<style>\n{asset.joinpath('page.css').read_text(encoding='utf-8')}</style></head><body>",
        "<h1>Unlearning leaderboard</h1>",
        intro(tau),
        controls(table),
        f'<table id="leaderboard">\n<thead>\n{head}\n</thead>\n<tbody>\n{body}\n</tbody>\n</table>',
        notes(blanks),
        figures(plots),
        runs_table(table, runs, target),
        f"<script>\n{asset.joinpath('page.js').read_text(encoding='utf-8')}</script>",
        "</body></html>", "",
    ])


def intro(tau: float) -> str:
    return (f"<p>One row per model; columns grouped by facet, with their direction (hover a header for its "
            f"definition, click it to sort). Colours: forget and privacy cells by distance to the retain model "
            f"(<span class=\"good\">near</span>, <span class=\"mid\">between</span>, <span class=\"bad\">near the "
            f"target</span>); utility cells against the target (<span class=\"good\">≥ τ = {tau:g}</span>, "
            f"<span class=\"mid\">≥ τ/2</span>, <span class=\"bad\">below</span>). Blank = not measured. "
            f"Rows marked ⚠ were computed under another convention or task version than the target.</p>")


def controls(table: pd.DataFrame) -> str:
    def select(name: str) -> str:
        values = sorted(set(table[name].astype(str)))
        options = "".join(f'<option value="{escape(value)}">{escape(value)}</option>' for value in values)
        return f'<label>{name} <select id="filter-{name}"><option value="">all</option>{options}</select></label>'

    views = "".join(f'<button type="button" class="view" data-view="{view}">{label}</button>'
                    for view, label in (("all", "all"), ("plain", "plain"), ("controlled", "controlled (matched utility)")))
    return f'<div id="controls"><span>view {views}</span> {select("method")} {select("control")}</div>'


def facet_of(name: str, by_name: dict[str, Column]) -> str:
    if name in RUN_COLUMNS:
        return "run"
    if name == "matched":
        return "control"
    return by_name[name.removesuffix(PERCENT)].facet


def header(table: pd.DataFrame, by_name: dict[str, Column]) -> str:
    """Two rows: the facets (one cell spanning its consecutive columns), then the columns."""
    spans: list[list] = []
    for name in table.columns:
        facet = facet_of(name, by_name)
        if spans and spans[-1][0] == facet:
            spans[-1][1] += 1
        else:
            spans.append([facet, 1])
    facets = "".join(f'<th colspan="{count}" class="facet">{escape(facet)}</th>' for facet, count in spans)
    cells = "".join(column_header(index, name, by_name) for index, name in enumerate(table.columns))
    return f'<tr class="facets">{facets}</tr>\n<tr class="columns">{cells}</tr>'


def column_header(index: int, name: str, by_name: dict[str, Column]) -> str:
    base = by_name.get(name.removesuffix(PERCENT))
    numeric = base is not None or name in ("τ", "α")
    if base is None:
        tip, label = {"matched": "retain ES ≥ τ × the target's retain ES"}.get(name, name), name
    elif name.endswith(PERCENT):
        tip, label = f"100 × {base.name} / the target's. {base.definition()}", name
    else:
        tip = f"{DIRECTIONS[base.direction]}. {base.definition()}"
        label = f"{name} {base.direction}".strip()
    return (f'<th data-index="{index}" data-name="{escape(name)}" data-type="{"number" if numeric else "text"}" '
            f'title="{escape(tip)}">{escape(label)}</th>')


def table_row(row: pd.Series, by_name: dict[str, Column], table: pd.DataFrame, tau: float,
              runs: dict[str, Run], target: Run) -> str:
    run = runs[row["model"]]
    flags = differences(run, target)
    cells = "".join(cell(name, row[name], by_name, table, tau, run, flags) for name in table.columns)
    view = "reference" if row["group"] == "reference" else "plain" if row["group"] == "plain" else "controlled"
    return (f'<tr class="run{" flagged" if flags else ""}" data-view="{view}" data-method="{escape(str(row["method"]))}" '
            f'data-control="{escape(str(row["control"]))}">{cells}</tr>')


def cell(name: str, value, by_name: dict[str, Column], table: pd.DataFrame, tau: float, run: Run,
         flags: list[str]) -> str:
    text = format_cell(name, value)
    if name == "model":
        about = "; ".join(f"{key}: {item}" for key, item in run_metadata(run).items())
        mark = "⚠ " if flags else ""
        return f'<td data-value="{escape(text)}" title="{escape("; ".join(flags + [about]))}">{mark}{escape(text)}</td>'
    numeric = isinstance(value, float) and not isinstance(value, bool)
    sort_value = ("" if math.isnan(value) else repr(value)) if numeric else text
    tone = tone_of(name, value, by_name, table, tau)
    attributes = f' class="{tone}"' if tone else ""
    return f'<td data-value="{escape(sort_value)}"{attributes}>{escape(text)}</td>'


def tone_of(name: str, value, by_name: dict[str, Column], table: pd.DataFrame, tau: float) -> str:
    """good / mid / bad against the references (see :func:`intro`), or "" when there is nothing to compare."""
    column = by_name.get(name.removesuffix(PERCENT))
    if column is None or not isinstance(value, float) or math.isnan(value) or not column.direction:
        return ""
    target, retain = reference(table, "target", column.name), reference(table, "retain", column.name)
    if column.utility:
        ratio = value / 100 if name.endswith(PERCENT) else value / target if target else math.nan
        return "" if math.isnan(ratio) else "good" if ratio >= tau else "mid" if ratio >= tau / 2 else "bad"
    if math.isnan(target) or math.isnan(retain) or target == retain:
        return ""
    distance = abs(value - retain) / abs(target - retain)
    return "good" if distance <= NEAR else "bad" if distance >= FAR else "mid"


def reference(table: pd.DataFrame, role: str, name: str) -> float:
    rows = table[(table["group"] == "reference") & (table["method"] == role)]
    return float(rows[name].iloc[0]) if not rows.empty else math.nan


def notes(blanks: dict) -> str:
    if not blanks:
        return ""
    items = "".join(f"<li>{escape(why)} — {escape(', '.join(names))}</li>" for why, names in blanks.items())
    return f'<details id="blanks"><summary>Blank cells (not measured, never 0)</summary><ul>{items}</ul></details>'


def figures(plots: list[Path]) -> str:
    shown = [path for path in plots if Path(path).is_file()]
    if not shown:
        return ""
    items = []
    for path in shown:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        caption = CAPTIONS.get(Path(path).name, Path(path).stem.replace("_", " "))
        items.append(f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{escape(caption)}</figcaption></figure>")
    return "<h2>Plots</h2>\n" + "\n".join(items)


def runs_table(table: pd.DataFrame, runs: dict[str, Run], target: Run) -> str:
    """Per-row run metadata, with why a row is flagged."""
    keys = list(run_metadata(target))
    head = "".join(f"<th>{escape(key)}</th>" for key in ["row", *keys, "flag"])
    lines = []
    for name in table["model"]:
        run = runs[name]
        flags = differences(run, target)
        cells = [name, *run_metadata(run).values(), "⚠ " + "; ".join(flags) if flags else ""]
        row = "".join(f"<td>{escape(str(value))}</td>" for value in cells)
        lines.append(f'<tr class="flagged">{row}</tr>' if flags else f"<tr>{row}</tr>")
    return f'<h2>Runs</h2>\n<table id="runs"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(lines) + "\n</tbody></table>"
