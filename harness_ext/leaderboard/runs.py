"""Reading runs: lm-eval results files (and open-unlearning's, through :mod:`.open_unlearning`) → :class:`Run`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lm_eval.utils import simple_parse_args_string

from unlearn_tasks.errors import UnlearnBenchError

RESULTS_GLOB = "results_*.json"
CONTROL_FILE = "control.json"
DEFAULT_CONVENTION = "default"


class LeaderboardError(UnlearnBenchError, ValueError):
    """Runs that cannot be put in one table: the message names the runs and says how to fix it."""


@dataclass
class Run:
    """The newest results file of one model folder, and what we know about its model."""

    path: Path
    results: dict
    model_args: dict
    control: dict = field(default_factory=dict)
    control_source: str = "control: none (no pretrained path)"  # where control.json was read, or where it was looked for
    about: dict = field(default_factory=dict)  # run metadata that the results file itself does not hold

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


def find_results(paths: list[Path], other_names: tuple[str, ...] = ()) -> list[Path]:
    """The newest ``results_*.json`` per folder under each path (a file path is taken as is).

    A folder holding one of ``other_names`` (open-unlearning's result files) yields that file instead.
    """
    newest: dict[Path, Path] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise LeaderboardError(f"run {path} does not exist")
        found = [path] if path.is_file() else sorted(path.rglob(RESULTS_GLOB))
        found += [] if path.is_file() else sorted(file for name in other_names for file in path.rglob(name))
        if not found:
            raise LeaderboardError(f"no {RESULTS_GLOB} under {path}: pass lm-eval --output_path folders"
                                   + (f" or folders with {' or '.join(other_names)}" if other_names else ""))
        for file in found:
            folder = file.resolve().parent
            if folder not in newest or preferred(file, newest[folder], other_names):
                newest[folder] = file
    return sorted(newest.values())


def preferred(file: Path, current: Path, other_names: tuple[str, ...]) -> bool:
    """Newer lm-eval results win; of other files, the earlier name in ``other_names`` wins."""
    if file.name in other_names or current.name in other_names:
        rank = {name: index for index, name in enumerate(other_names)}
        return rank.get(file.name, -1) < rank.get(current.name, -1)
    return file.name > current.name


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
    if run.pretrained:
        candidates = control_candidates(run.pretrained, path)
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is not None:
            run.control, run.control_source = read_json(found), f"control: {found}"
        else:
            run.control_source = f"control: none found (looked in {', '.join(map(str, candidates))})"
    return run


def control_candidates(pretrained: str, results_path: Path) -> list[Path]:
    """Where the checkpoint's ``control.json`` may be. An absolute ``pretrained`` path is the one place. A
    relative one was relative to the directory ``lm_eval`` ran in, which lm-eval does not record: it is
    tried against the results file's folder and each folder above it (the output path usually lies under
    that directory), nearest first, then against the current directory."""
    path = Path(pretrained).expanduser()
    if path.is_absolute():
        return [path / CONTROL_FILE]
    folder = Path(results_path).resolve().parent
    bases = [folder, *folder.parents, Path.cwd()]
    return list(dict.fromkeys(base / path / CONTROL_FILE for base in bases))


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


# ---- run metadata (shown per row in leaderboard.html) ---------------------------------------------

def run_metadata(run: Run) -> dict[str, str]:
    """What a reader needs to avoid comparing unlike runs: model, convention, attack, versions, data, date."""
    configs = run.results.get("configs", {})
    metadata = [config.get("metadata") or {} for config in configs.values()]
    versions = run.results.get("versions", {})
    return {
        "model": run.pretrained or run.name,
        "convention": str(first(metadata, "convention") or DEFAULT_CONVENTION),
        "attack": attack_of(run, metadata),
        "task versions": "; ".join(f"{task} v{version}" for task, version in sorted(versions.items())),
        "data source": data_source(configs),
        "date": run_date(run),
        "control file": run.control_source.removeprefix("control: "),
    } | run.about


def differences(run: Run, reference: Run) -> list[str]:
    """Why ``run`` is not like ``reference`` (the target): another convention or other task versions."""
    mine, theirs = run_metadata(run), run_metadata(reference)
    found = []
    if mine["convention"] != theirs["convention"]:
        found.append(f"convention {mine['convention']} (target: {theirs['convention']})")
    versions, reference_versions = run.results.get("versions", {}), reference.results.get("versions", {})
    shared = set(versions) & set(reference_versions)
    if any(versions[task] != reference_versions[task] for task in shared) or (reference_versions and not shared):
        found.append(f"task versions {mine['task versions'] or 'none'} (target: {theirs['task versions']})")
    return found


def attack_of(run: Run, metadata: list[dict]) -> str:
    """An input attack (task metadata ``attack`` and its ``attack_*`` parameters) and/or a weight attack
    (the checkpoint's control.json ``attack``, e.g. quantize with its ``bits``); "none" without either."""
    found = []
    task_attack = next((entry for entry in metadata if entry.get("attack")), None)
    if task_attack is not None:
        parameters = [f"{key.removeprefix('attack_')}={value}" for key, value in sorted(task_attack.items())
                      if key.startswith("attack_")]
        found.append(f"{task_attack['attack']}" + (f" ({', '.join(parameters)})" if parameters else ""))
    if run.control.get("attack"):
        bits = run.control.get("bits")
        found.append(f"{run.control['attack']}" + (f" ({bits}-bit)" if bits else ""))
    return " + ".join(found) or "none"


def first(dicts: list[dict], key: str):
    return next((entry[key] for entry in dicts if entry.get(key) is not None), None)


def data_source(configs: dict) -> str:
    """The run's documents: per ``dataset_path`` (our tasks' own loader when ``custom_dataset``), its configs."""
    sources: dict[str, set] = {}
    for config in configs.values():
        path = config.get("dataset_path") or ("unlearn_tasks loader" if config.get("custom_dataset") else None)
        name = (config.get("dataset_kwargs") or {}).get("config") or config.get("dataset_name")
        if path is not None:
            sources.setdefault(path, set()).update([name] if name else [])
    return "; ".join(f"{path}: {', '.join(sorted(names))}" if names else path
                     for path, names in sorted(sources.items())) or "not recorded"


def run_date(run: Run) -> str:
    """lm-eval's ``date`` (seconds since the epoch) in UTC, else the results file's time stamp."""
    stamp = run.results.get("date")
    if isinstance(stamp, (int, float)):
        return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(stamp, str) and stamp:
        return stamp
    return run.path.stem.removeprefix("results_")
