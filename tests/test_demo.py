"""``unlearn-bench demo --quick`` end to end, and the presets (the resumable steps: tests/test_demo_steps.py).

The end-to-end facts are read from the lm-eval results files the demo wrote (not from its summary),
then checked against the leaderboard it built from them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from harness_ext.demo.presets import QUICK_METHODS, TOFU_TASKS, demo_config
from harness_ext.demo.robustness import PRESETS as ROBUSTNESS_PRESETS
from harness_ext.demo.run import run_demo
from harness_ext.unlearning.config import UnlearnError

FORGET_TASK, UTILITY_TASK = "unlearn_tofu_forget10", "unlearn_tofu_utility"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """One ``--quick`` run (≈ 1 minute on two cores): its output folder and log lines."""
    out = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    run_demo(demo_config(quick=True), out, log=lines.append)
    return out, lines


def scores(out: Path, model: str, task: str) -> dict:
    """``results[task]`` of the one lm-eval results file of ``model``'s run."""
    (path,) = (out / "work" / "runs" / model).rglob("results_*.json")
    return json.loads(path.read_text(encoding="utf-8"))["results"][task]


def test_quick_demo_tells_the_story(quick_demo):
    out, _ = quick_demo
    target_rouge = scores(out, "target", FORGET_TASK)["rougeL_recall,none"]
    retain_rouge = scores(out, "retain", FORGET_TASK)["rougeL_recall,none"]
    assert target_rouge >= 0.6, "the target memorised the forget set"
    assert retain_rouge < target_rouge / 2, "the retain model never saw it"

    target_utility = scores(out, "target", UTILITY_TASK)
    plain_ga = scores(out, "ga-none", UTILITY_TASK)
    assert plain_ga["model_utility,none"] <= 0.5 * target_utility["model_utility,none"], "plain GA collapses utility"
    controlled_ga = scores(out, "ga-mix", UTILITY_TASK)
    assert controlled_ga["es_retain,none"] >= 0.9 * target_utility["es_retain,none"], "mixing keeps τ = 0.9"

    alpha = json.loads((out / "work" / "models" / "ga-mix" / "control.json").read_text())["alpha"]
    assert 0 < alpha < 1, "the bar lies between the target and the plain GA model"


def test_quick_demo_scores_every_model_with_a_real_reference(quick_demo):
    out, _ = quick_demo
    models = ["retain", "target"] + [f"{method}-{control}" for method in QUICK_METHODS for control in ("none", "mix")]
    for model in models:
        forget = scores(out, model, FORGET_TASK)
        assert not math.isnan(forget["forget_quality,none"]), model
        assert not math.isnan(scores(out, model, "unlearn_tofu_mia_forget10")["privleak,none"]), model
    # The retain model compared with its own reference: KS p-value 1, privleak 0.
    assert scores(out, "retain", FORGET_TASK)["forget_quality,none"] == pytest.approx(1.0)
    assert scores(out, "retain", "unlearn_tofu_mia_forget10")["privleak,none"] == pytest.approx(0.0)

    table = pd.read_csv(out / "leaderboard.csv")
    assert sorted(table["model"]) == sorted(models)
    assert list(table["model"][:2]) == ["target", "retain"]
    row = table.set_index("model").loc["ga-none"]
    assert row["forget ROUGE-L"] == pytest.approx(scores(out, "ga-none", FORGET_TASK)["rougeL_recall,none"])
    assert row["model utility"] == pytest.approx(scores(out, "ga-none", UTILITY_TASK)["model_utility,none"])
    for name in ("leaderboard.md", "forget_vs_retain_es.png", "alpha_curves.png", "timings.json"):
        assert (out / name).is_file(), name


def test_quick_demo_runs_the_robustness_study(quick_demo):
    out, _ = quick_demo
    table = pd.read_csv(out / "robustness.csv")
    preset = ROBUSTNESS_PRESETS["quick"]
    assert set(table["attack"]) == set(preset.attacks)
    members = 2 + len(QUICK_METHODS) * (2 + len(preset.mix_grid))  # target, retain, each method plain, mixed, on the grid
    assert (table["n"] == members).all()
    assert "Metrics by mean PCC" in (out / "robustness.md").read_text()
    assert (out / "robustness.png").is_file()


def test_quick_demo_times_its_phases_and_resumes_without_redoing_anything(quick_demo):
    out, lines = quick_demo
    timings = json.loads((out / "timings.json").read_text())
    assert list(timings["phases"]) == ["data", "base model", "fine-tune", "unlearn", "evaluate", "robustness",
                                       "leaderboard"]
    assert all(step["made_now"] for step in timings["steps"])
    assert any(line.strip().startswith("fine-tune") for line in lines)

    results = sorted((out / "work" / "runs").rglob("results_*.json"))
    before = {path: path.stat().st_mtime_ns for path in results}
    again: list[str] = []
    run_demo(demo_config(quick=True), out, log=again.append)
    resumed = json.loads((out / "timings.json").read_text())
    assert not any(step["made_now"] for step in resumed["steps"])
    assert resumed["phases"]["fine-tune"]["seconds"] == timings["phases"]["fine-tune"]["seconds"]
    assert {path: path.stat().st_mtime_ns for path in sorted((out / "work" / "runs").rglob("results_*.json"))} == before


# ---- presets --------------------------------------------------------------------------------------

def test_presets(monkeypatch, tmp_path):
    quick = demo_config(quick=True)
    assert (quick.model, quick.data, quick.authors, quick.methods) == (None, "synthetic", 20, QUICK_METHODS)
    assert demo_config().methods == ("ga", "graddiff", "kl", "npo", "simnpo", "idkpo", "rmu")
    assert demo_config().tasks == TOFU_TASKS

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    real = demo_config(model="HuggingFaceTB/SmolLM2-135M-Instruct", unlearn_lr=2e-5, device="cuda")
    assert (real.data, real.device, real.threads) == ("hub", "cuda", None)
    assert real.tasks == TOFU_TASKS + ("unlearn_mmlu_mini", "unlearn_probes")
    assert real.unlearn == {"lr": 2e-5, "epochs": 5, "batch_size": 8, "dtype": "float32"}
    (tmp_path / "tofu").mkdir()
    (tmp_path / "probes").mkdir()
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    local = demo_config(model="m")
    assert (local.data, local.tasks) == (str(tmp_path), TOFU_TASKS + ("unlearn_probes",))  # no mmlu/ folder
    assert demo_config(model="m", data="synthetic").tasks == TOFU_TASKS

    with pytest.raises(UnlearnError, match="unknown unlearning method 'gradascent'"):
        demo_config(methods=["ga", "gradascent"])


def test_a_data_folder_without_tofu_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="no tofu/ folder"):
        run_demo(demo_config(data=str(tmp_path / "nothing")), tmp_path / "out", log=lambda line: None)
    assert os.environ.get("UNLEARN_CACHE_DIR") != str(tmp_path / "out" / "work" / "cache")  # environment restored


def test_the_demo_modules_import_one_way():
    """Each module of harness_ext.demo imports only those before it in this order (no circle)."""
    import ast

    import harness_ext.demo

    order = ["synth", "tiny_model", "presets", "steps", "robustness", "scoring", "phases", "run", "command"]
    folder = Path(harness_ext.demo.__file__).parent
    assert sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__") == sorted(order)
    for position, name in enumerate(order):
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "harness_ext.demo":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness_ext.demo."):
                imported.add(node.module.split(".")[2])
        assert imported <= set(order[:position]), (name, imported - set(order[:position]))
