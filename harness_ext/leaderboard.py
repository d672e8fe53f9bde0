"""``unlearn-bench leaderboard``: lm-eval results of many models → one table (Markdown, CSV) and plots.

    unlearn-bench leaderboard runs/ other/ --target ckpt/target --retain ckpt/retain --out results/NAME

Each RUN is an lm-eval ``--output_path`` folder (searched recursively; the newest
``results_*.json`` of each model folder is used) or one results file. Rows are grouped as
Wang et al. 2024 ("Unlearning with Control", arXiv:2406.09179) compare methods: the target and
retain references, then plain unlearning, then each "controlled at τ" group, each group sorted by
forget ES ascending (lower = more forgotten). Column meanings: docs/leaderboard.md.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from lm_eval.utils import simple_parse_args_string

from harness_ext.io import atomic_write_text

RESULTS_GLOB = "results_*.json"
CONTROL_FILE = "control.json"
DATA_FIELDS = ("dataset_path", "dataset_name", "dataset_kwargs", "test_split", "num_fewshot")
NOT_DATA = {"version", "token_details", "pretrained", "retain_ref", "config_source"}  # metadata that leaves documents alone
FORGET_SPLITS = ("forget01", "forget05", "forget10")
PROBE_PREFIX = "unlearn_probe_"
NAN_HINTS = {"forget_quality": " (evaluate with --metadata retain_ref=<reference JSON>)"}


class LeaderboardError(ValueError):
    """Runs that cannot be put in one table: the message names the runs and says how to fix it."""


@dataclass(frozen=True)
class Column:
    """A table column read from ``results[task]["<metric>,none"]``; the first task of ``tasks`` present wins."""

    name: str
    tasks: tuple[str, ...]
    metric: str
    utility: bool = False


def resolve_columns(columns: tuple[Column, ...], runs: list[Run]) -> tuple[Column, ...]:
    """Each column reads one task: the first of its candidates that any run has (else the first)."""
    def chosen(column: Column) -> str:
        return next((task for task in column.tasks if any(run.task(task) for run in runs)), column.tasks[0])

    return tuple(Column(column.name, (chosen(column),), column.metric, column.utility) for column in columns)


def columns_for(split: str) -> tuple[Column, ...]:
    forget, mia = f"unlearn_tofu_{split}", f"unlearn_tofu_mia_{split}"
    return (
        Column("forget ROUGE-L", (forget,), "rougeL_recall"),
        Column("forget prob", (forget,), "prob"),
        Column("forget truth ratio", (forget,), "truth_ratio"),
        Column("forget ES", (forget,), "es"),
        Column("forget ES-para", (forget,), "es_para"),
        Column("forget quality", (forget,), "forget_quality"),
        Column("model utility", ("unlearn_tofu_utility",), "model_utility", utility=True),
        Column("retain ES", ("unlearn_tofu_utility",), "es_retain", utility=True),
        Column("MMLU acc", ("unlearn_mmlu", "unlearn_mmlu_mini"), "acc", utility=True),
        Column("probe acc", ("unlearn_probes",), "acc", utility=True),
        Column("retain entropy", ("unlearn_fluency_retain",), "token_entropy", utility=True),
        Column("privleak", (mia,), "privleak"),
    )


@dataclass
class Run:
    """The newest results file of one model folder, and what we know about its model."""

    path: Path
    results: dict
    model_args: dict
    control: dict = field(default_factory=dict)

    @property
    def pretrained(self) -> str:
        return str(self.model_args.get("pretrained") or "")

    @property
    def name(self) -> str:
        """The checkpoint folder's name, else lm-eval's model folder name; mixed models add their α."""
        name = Path(self.pretrained).name or self.path.parent.name
        alpha = self.model_args.get("alpha")
        return f"{name} (α={alpha})" if alpha is not None and self.model_type == "unlearn_mix" else name

    @property
    def model_type(self) -> str:
        return str(self.results.get("config", {}).get("model", ""))

    def task(self, task: str) -> dict | None:
        return self.results.get("results", {}).get(task) or self.results.get("groups", {}).get(task) or None


# ---- reading runs ---------------------------------------------------------------------------------

def find_results(paths: list[Path]) -> list[Path]:
    """The newest ``results_*.json`` per folder under each path (a file path is taken as is)."""
    newest: dict[Path, Path] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise LeaderboardError(f"run {path} does not exist")
        found = [path] if path.is_file() else sorted(path.rglob(RESULTS_GLOB))
        if not found:
            raise LeaderboardError(f"no {RESULTS_GLOB} under {path}: pass lm-eval --output_path folders")
        for file in found:
            folder = file.resolve().parent
            if folder not in newest or file.name > newest[folder].name:
                newest[folder] = file
    return sorted(newest.values())


def parse_model_args(value) -> dict:
    """lm-eval's ``model_args``: a dict, or a string ``"k=v,k=v"`` parsed as lm-eval parses it."""
    return dict(value) if isinstance(value, dict) else simple_parse_args_string(str(value or ""))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise LeaderboardError(f"{path} is not valid JSON: {error}") from None


def load_run(path: Path) -> Run:
    results = read_json(path)
    if not isinstance(results, dict) or "results" not in results:
        raise LeaderboardError(f"{path} has no 'results': is it an lm-eval results file?")
    run = Run(path, results, parse_model_args(results.get("config", {}).get("model_args")))
    control_path = Path(run.pretrained) / CONTROL_FILE if run.pretrained else None
    if control_path is not None and control_path.is_file():
        run.control = read_json(control_path)
    return run


def describe(run: Run) -> dict:
    """method, control, τ and α: from control.json when the checkpoint has one, else the folder name."""
    info = run.control
    control = info.get("control") or "none"
    alpha = info.get("alpha")
    if run.model_type == "unlearn_mix":
        control = control if control != "none" else "mix"
        alpha = run.model_args.get("alpha", alpha)
    return {
        "method": info.get("method") or Path(run.pretrained).name or run.path.parent.name,
        "control": control,
        "τ": number(info.get("tau")) if control != "none" else math.nan,
        "α": number(alpha),
    }


def number(value) -> float:
    """A float, or NaN for anything missing or non-numeric (lm-eval writes "N/A")."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# ---- checks ---------------------------------------------------------------------------------------

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


def choose_split(runs: list[Run], forget: str | None) -> str:
    """``forget`` (``01`` or ``forget01``), else the one TOFU forget split the runs were evaluated on."""
    present = sorted({split for run in runs for split in FORGET_SPLITS if run.task(f"unlearn_tofu_{split}")})
    if forget is not None:
        split = forget if forget.startswith("forget") else f"forget{forget}"
        if split not in FORGET_SPLITS:
            raise LeaderboardError(f"unknown forget split {forget!r}; known: {', '.join(FORGET_SPLITS)}")
        return split
    if len(present) > 1:
        raise LeaderboardError(f"the runs have several forget splits ({', '.join(present)}); choose one with --forget")
    return present[0] if present else FORGET_SPLITS[0]


# ---- the table ------------------------------------------------------------------------------------

def metric_value(run: Run, tasks: tuple[str, ...], metric: str) -> tuple[float, str | None]:
    """(value, None), or (NaN, why it is missing)."""
    task = tasks[0]
    scores = run.task(task)
    if scores is None:
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
            percent = f"{name} (% target)"
            table[percent] = 100.0 * table[name] / reference if reference and not math.isnan(reference) else math.nan
            ordered.append(percent)
    bar = tau * target["retain ES"]
    table["matched"] = [None if math.isnan(value) or math.isnan(bar) else value >= bar or math.isclose(value, bar)
                        for value in table["retain ES"]]
    return table[ordered + ["matched"]]


# ---- output ---------------------------------------------------------------------------------------

def format_cell(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column.endswith("(% target)"):
        return f"{value:.1f}%"
    if column in ("α", "τ"):
        return f"{value:.4g}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(table: pd.DataFrame, columns: tuple[Column, ...], blanks: dict, tau: float) -> str:
    """The table (blank cells marked ¹ in the header), then the footnotes and each column's source."""
    cells = pd.DataFrame({name: [format_cell(name, value) for value in table[name]] for name in table.columns})
    measured = set(table.columns[table.columns.get_loc(columns[0].name):])
    cells.columns = [f"{name} ¹" if name in measured and (cells[name] == "").any() else name for name in table.columns]
    sources = "; ".join(f"{column.name} = `{column.tasks[0]}` {column.metric}" for column in columns)
    align = ["right" if name in measured or name in ("α", "τ") else "left" for name in table.columns]
    lines = [cells.to_markdown(index=False, disable_numparse=True, colalign=align), ""]
    if blanks:
        lines += ["¹ Blank = not measured (never 0); % target is also blank when the target's value is 0:", ""]
        models = list(table["model"])
        lines += [f"- {why} — {', '.join(sorted(names, key=models.index))}" for why, names in blanks.items()]
        lines += [""]
    lines += [f"Sources: {sources}. matched: retain ES ≥ τ × the target's (τ = {tau:g}).", ""]
    return "\n".join(lines)


def traces(runs: list[Run]) -> dict[str, dict]:
    """Calibration traces with α (model mixing) from control.json, by model name."""
    return {run.name: run.control for run in runs
            if any("alpha" in step for step in run.control.get("trace") or [])}


def build_leaderboard(runs: list[Path], target: str, retain: str | None, out: Path, tau: float = 0.9,
                      forget: str | None = None) -> pd.DataFrame:
    """Read, check, tabulate and write ``leaderboard.md``, ``leaderboard.csv`` and the plots under ``out``."""
    from harness_ext.leaderboard_plots import plot_alpha_curves, plot_forget_vs_retain

    if not 0.0 < tau <= 1.0:
        raise LeaderboardError(f"--tau must be in (0, 1], got {tau}")
    loaded = [load_run(path) for path in find_results(runs)]
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
    atomic_write_text(out / "leaderboard.md", markdown(table, columns, blanks, tau))
    atomic_write_text(out / "leaderboard.csv", table.to_csv(index=False))
    plot_forget_vs_retain(table, tau, out / "forget_vs_retain_es.png")
    plot_alpha_curves(traces(loaded), out / "alpha_curves.png")
    return table


# ---- CLI ------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="lm-eval --output_path folders (searched recursively) or results_*.json files")
    parser.add_argument("--target", required=True, help="the target model: its pretrained path or folder name")
    parser.add_argument("--retain", help="the retain model: its pretrained path or folder name")
    parser.add_argument("--out", required=True, type=Path, help="output folder, e.g. results/NAME")
    parser.add_argument("--tau", type=float, default=0.9, help="τ of the utility bar (default 0.9)")
    parser.add_argument("--forget", help="TOFU forget split, 01/05/10 (default: the one the runs have)")


def run(args) -> int:
    table = build_leaderboard(args.runs, args.target, args.retain, args.out, args.tau, args.forget)
    print(f"{len(table)} models -> {Path(args.out) / 'leaderboard.md'}, leaderboard.csv, plots")
    return 0
