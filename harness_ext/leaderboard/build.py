"""``unlearn-bench leaderboard``: lm-eval results of many models → one table (Markdown, CSV, HTML) and plots.

    unlearn-bench leaderboard runs/ other/ --target ckpt/target --retain ckpt/retain --out results/NAME [--html]

Each RUN is an lm-eval ``--output_path`` folder (searched recursively; the newest
``results_*.json`` of each model folder is used), one results file, or open-unlearning's
``TOFU_EVAL.json``/``TOFU_SUMMARY.json`` (or a folder holding them). Rows are grouped as
Wang et al. 2024 ("Unlearning with Control", arXiv:2406.09179) compare methods: the target and
retain references, then plain unlearning, then each "controlled at τ" group, each group sorted by
forget ES ascending (lower = more forgotten). Column meanings: docs/leaderboard.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from harness_ext.io import atomic_write_text
from harness_ext.leaderboard import open_unlearning
from harness_ext.leaderboard.checks import check_comparable, choose_split, find_model
from harness_ext.leaderboard.columns import columns_for, resolve_columns
from harness_ext.leaderboard.markdown import markdown
from harness_ext.leaderboard.runs import LeaderboardError, Run, find_results, load_run
from harness_ext.leaderboard.table import add_relative, order, table_rows, traces

PLOTS = ("forget_vs_retain_es.png", "alpha_curves.png")


def read_runs(paths: list[Path], forget: str | None) -> list[Run]:
    files = find_results(paths, open_unlearning.FILES)
    return [open_unlearning.load(file, forget) if open_unlearning.is_open_unlearning(file) else load_run(file)
            for file in files]


def build_leaderboard(runs: list[Path], target: str, retain: str | None, out: Path, tau: float = 0.9,
                      forget: str | None = None, html: bool = False) -> pd.DataFrame:
    """Read, check, tabulate and write ``leaderboard.md``, ``leaderboard.csv``, the plots and, with ``html``,
    ``leaderboard.html`` under ``out``."""
    from harness_ext.leaderboard.plots import plot_alpha_curves, plot_forget_vs_retain

    if not 0.0 < tau <= 1.0:
        raise LeaderboardError(f"--tau must be in (0, 1], got {tau}")
    loaded = read_runs(runs, forget)
    check_comparable(loaded)
    roles = {loaded.index(find_model(loaded, target, "target")): "target"}
    if retain is not None:
        roles[loaded.index(find_model(loaded, retain, "retain"))] = "retain"
        if len(roles) == 1:
            raise LeaderboardError(f"--target {target!r} and --retain {retain!r} are the same model")
    columns = resolve_columns(columns_for(choose_split(loaded, forget)), loaded)
    rows, blanks = table_rows(loaded, roles, columns)
    table = order(pd.DataFrame(rows))
    target_row = table[(table["group"] == "reference") & (table["method"] == "target")].iloc[0]
    table = add_relative(table, columns, target_row, tau)
    out = Path(out)
    controls = {run.name: run.control_source for run in loaded}
    atomic_write_text(out / "leaderboard.md", markdown(table, columns, blanks, tau, controls))
    atomic_write_text(out / "leaderboard.csv", table.to_csv(index=False))
    plot_forget_vs_retain(table, tau, out / PLOTS[0])
    plot_alpha_curves(traces(loaded), out / PLOTS[1])
    if html:
        from harness_ext.leaderboard.html import page

        by_name = {run.name: run for run in loaded}
        reference = loaded[next(index for index, role in roles.items() if role == "target")]
        plots = [out / name for name in PLOTS] + sorted(out.glob("robustness*.png"))
        atomic_write_text(out / "leaderboard.html", page(table, columns, blanks, tau, by_name, reference, plots))
    return table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="lm-eval --output_path folders (searched recursively), results_*.json files, "
                             "or open-unlearning TOFU_EVAL.json/TOFU_SUMMARY.json files or folders")
    parser.add_argument("--target", required=True, help="the target model: its pretrained path or folder name")
    parser.add_argument("--retain", help="the retain model: its pretrained path or folder name")
    parser.add_argument("--out", required=True, type=Path, help="output folder, e.g. results/NAME")
    parser.add_argument("--tau", type=float, default=0.9, help="τ of the utility bar (default 0.9)")
    parser.add_argument("--forget", help="TOFU forget split, 01/05/10 (default: the one the runs have)")
    parser.add_argument("--html", action="store_true", help="also write leaderboard.html (one self-contained page)")


def run(args) -> int:
    table = build_leaderboard(args.runs, args.target, args.retain, args.out, args.tau, args.forget, args.html)
    page = ", leaderboard.html" if args.html else ""
    print(f"{len(table)} models -> {Path(args.out) / 'leaderboard.md'}, leaderboard.csv{page}, plots")
    return 0
