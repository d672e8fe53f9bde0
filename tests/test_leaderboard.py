"""The leaderboard on hand-made lm-eval results files: exact cells, ordering, percentages, refusals, plots."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from harness_ext import leaderboard
from harness_ext.leaderboard import LeaderboardError, build_leaderboard

FORGET = "unlearn_tofu_forget01"
UTILITY = "unlearn_tofu_utility"

# model -> forget (rougeL_recall, prob, truth_ratio, es, es_para), utility (model_utility, es_retain),
#          MMLU acc, probes acc, retain token entropy, privleak; None = task not evaluated
MODELS = {
    "target": ((0.95, 0.9, 0.5, 0.8, 0.6), (0.5, 0.8), 0.5, 0.4, 5.0, -50.0),
    "retain": ((0.4, 0.1, 0.7, 0.2, 0.15), (0.5, 0.75), 0.5, 0.4, 5.0, 0.0),
    "ga": ((0.05, 0.01, 0.8, 0.05, 0.04), (0.125, 0.1), 0.25, 0.2, 2.5, 10.0),
    "npo": ((0.2, 0.05, 0.6, 0.1, 0.1), (0.25, 0.4), None, 0.3, 4.0, 5.0),
    "ga_mix": ((0.5, 0.4, 0.6, 0.3, 0.25), (0.45, 0.72), 0.5, 0.4, 4.5, -10.0),
    "npo_mix": ((0.45, 0.3, 0.6, 0.25, 0.2), (0.475, 0.76), 0.45, 0.36, 4.75, -5.0),
}
CONTROLS = {
    "ga": {"method": "ga", "control": "none", "tau": None, "alpha": None, "trace": [], "lr": 1e-5},
    "ga_mix": {"method": "ga", "control": "mix", "tau": 0.9, "alpha": 0.4375, "lr": 1e-5,
               "trace": [{"alpha": 1.0, "metric": 0.1, "meets_bar": False},
                         {"alpha": 0.5, "metric": 0.7, "meets_bar": False},
                         {"alpha": 0.25, "metric": 0.78, "meets_bar": True},
                         {"alpha": 0.4375, "metric": 0.73, "meets_bar": True}]},
    "npo_mix": {"method": "npo", "control": "mix", "tau": 0.9, "alpha": 0.5, "trace": [
        {"alpha": 1.0, "metric": 0.4, "meets_bar": False}, {"alpha": 0.5, "metric": 0.76, "meets_bar": True}]},
}


def scores(**metrics) -> dict:
    return {f"{name},none": value for name, value in metrics.items()} | {"alias": "x"}


def results_json(name: str, pretrained: Path, version: int = 1, n_forget: int = 40) -> dict:
    forget, utility, mmlu, probes, entropy, privleak = MODELS[name]
    rouge, prob, truth_ratio, es, es_para = forget
    results = {
        FORGET: scores(rougeL_recall=rouge, prob=prob, truth_ratio=truth_ratio, es=es, es_para=es_para,
                       forget_quality=float("nan")) | {"es_stderr,none": 0.01},
        UTILITY: scores(model_utility=utility[0], es_retain=utility[1]),
        "unlearn_probes": scores(acc=probes),
        "unlearn_fluency_retain": scores(token_entropy=entropy, rep3=0.1),
        "unlearn_tofu_mia_forget01": scores(privleak=privleak, auc_loss=0.5),
    }
    if mmlu is not None:
        results["unlearn_mmlu"] = scores(acc=mmlu)
    tasks = sorted(results)
    metadata = {"version": version, "pretrained": str(pretrained), "dtype": "float32", "token_details": True,
                "config_source": f"/checkout-of-{name}/tasks/x.yaml"}
    return {
        "results": results,
        "groups": {"unlearn_mmlu": results.get("unlearn_mmlu", {})},
        "configs": {task: {"task": task, "test_split": "test",
                           "metadata": metadata | ({"config": "forget01_perturbed"} if task == FORGET else {})}
                    for task in tasks},
        "versions": {task: version if task == FORGET else 1 for task in tasks},
        "n-samples": {task: {"original": n_forget if task == FORGET else 10, "effective": 10} for task in tasks},
        "config": {"model": "unlearn_hf", "model_args": f"pretrained={pretrained},dtype=float32"},
        "model_name": str(pretrained),
    }


def write_run(root: Path, name: str, stamp: str = "2025-01-02T10-00-00.000000", **kwargs) -> Path:
    """A checkpoint folder (with control.json when the model has one) and its lm-eval results file."""
    checkpoint = root / "checkpoints" / name
    checkpoint.mkdir(parents=True, exist_ok=True)
    if name in CONTROLS:
        (checkpoint / "control.json").write_text(json.dumps(CONTROLS[name]))
    folder = root / "runs" / name / str(checkpoint).replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"results_{stamp}.json"
    path.write_text(json.dumps(results_json(name, checkpoint, **kwargs)))
    return path


@pytest.fixture
def runs(tmp_path) -> Path:
    for name in MODELS:
        write_run(tmp_path, name)
    return tmp_path


def build(root: Path, **kwargs) -> pd.DataFrame:
    checkpoints = root / "checkpoints"
    return build_leaderboard([root / "runs"], str(checkpoints / "target"), "retain", root / "out", **kwargs)


def test_rows_are_grouped_and_sorted_by_forget_es(runs):
    table = build(runs)
    assert list(table["model"]) == ["target", "retain", "ga", "npo", "npo_mix", "ga_mix"]
    assert list(table["group"]) == ["reference", "reference", "plain", "plain"] + ["controlled, τ = 0.9"] * 2
    assert list(table["method"]) == ["target", "retain", "ga", "npo", "npo", "ga"]
    assert list(table["control"]) == ["none", "none", "none", "none", "mix", "mix"]
    assert list(table["forget ES"]) == [0.8, 0.2, 0.05, 0.1, 0.25, 0.3]


def test_cells_and_percentages_are_exact(runs):
    table = build(runs).set_index("model")
    ga_mix = table.loc["ga_mix"]
    assert ga_mix["α"] == 0.4375 and ga_mix["τ"] == 0.9
    assert (ga_mix["forget ROUGE-L"], ga_mix["forget prob"], ga_mix["forget truth ratio"]) == (0.5, 0.4, 0.6)
    assert (ga_mix["forget ES-para"], ga_mix["privleak"]) == (0.25, -10.0)
    assert ga_mix["model utility (% target)"] == pytest.approx(90.0)  # 0.45 / 0.5
    assert ga_mix["retain ES (% target)"] == pytest.approx(90.0)  # 0.72 / 0.8
    assert ga_mix["MMLU acc (% target)"] == pytest.approx(100.0)
    assert ga_mix["probe acc (% target)"] == pytest.approx(100.0)
    assert ga_mix["retain entropy (% target)"] == pytest.approx(90.0)  # 4.5 / 5.0
    ga = table.loc["ga"]
    assert ga["model utility (% target)"] == pytest.approx(25.0)  # 0.125 / 0.5
    assert ga["retain ES (% target)"] == pytest.approx(12.5)  # 0.1 / 0.8
    assert math.isnan(ga["α"]) and math.isnan(ga["τ"])
    assert table.loc["target", "model utility (% target)"] == 100.0
    # matched: retain ES >= 0.9 x 0.8 = 0.72
    assert list(table["matched"]) == [True, True, False, False, True, True]


def test_markdown_cells(runs):
    build(runs)
    lines = (runs / "out" / "leaderboard.md").read_text().splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    ga_mix = dict(zip(header, (cell.strip() for cell in lines[7].strip("|").split("|"))))
    assert ga_mix["model"] == "ga_mix" and ga_mix["group"] == "controlled, τ = 0.9"
    assert ga_mix["α"] == "0.4375" and ga_mix["forget ES"] == "0.300" and ga_mix["forget quality ¹"] == ""
    assert ga_mix["model utility (% target)"] == "90.0%" and ga_mix["matched"] == "yes"


def test_missing_metric_is_blank_with_a_footnote(runs):
    table = build(runs).set_index("model")
    assert math.isnan(table.loc["npo", "MMLU acc"]) and math.isnan(table.loc["npo", "MMLU acc (% target)"])
    text = (runs / "out" / "leaderboard.md").read_text()
    lines = text.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    npo = dict(zip(header, (cell.strip() for cell in lines[5].strip("|").split("|"))))
    assert npo["model"] == "npo" and npo["MMLU acc ¹"] == "" and npo["MMLU acc (% target) ¹"] == ""
    assert "- MMLU acc: unlearn_mmlu not evaluated — npo\n" in text
    everyone = "target, retain, ga, npo, npo_mix, ga_mix"
    assert f"- forget quality: unlearn_tofu_forget01 reports forget_quality as nan (evaluate with --metadata retain_ref=<reference JSON>) — {everyone}\n" in text
    csv = pd.read_csv(runs / "out" / "leaderboard.csv").set_index("model")
    assert math.isnan(csv.loc["npo", "MMLU acc"]) and csv.loc["ga", "MMLU acc"] == 0.25
    assert "0.0" not in (runs / "out" / "leaderboard.csv").read_text().splitlines()[4].split(",")[12:14]


def test_newest_results_file_per_model_folder_wins(runs):
    old = write_run(runs, "ga", stamp="2024-01-01T00-00-00.000000")
    data = json.loads(old.read_text())
    data["results"][FORGET]["es,none"] = 0.99
    old.write_text(json.dumps(data))
    assert build(runs).set_index("model").loc["ga", "forget ES"] == 0.05


def test_mismatched_task_versions_are_refused_naming_both_runs(runs):
    newer = write_run(runs, "npo", version=2)
    with pytest.raises(LeaderboardError) as error:
        build(runs)
    message = str(error.value)
    assert f"task {FORGET}: version differs between" in message and "(1 vs 2)" in message
    assert str(newer) in message and "results_" in message.split(" and ")[0]


def test_different_data_is_refused(runs):
    write_run(runs, "npo", n_forget=200)
    with pytest.raises(LeaderboardError, match=r"data differs between .* \(n-samples: original: 40 vs 200\)"):
        build(runs)


def test_model_arguments_are_not_data(runs):
    """Each run's metadata holds its own pretrained path, model args and YAML path; none of them is data."""
    assert len(build(runs)) == 6


def test_unknown_target_lists_the_models(runs):
    with pytest.raises(LeaderboardError, match=r"--target 'nope' matches no model; models: .*checkpoints/ga"):
        build_leaderboard([runs / "runs"], "nope", None, runs / "out")


def test_mixing_model_takes_alpha_from_its_arguments(runs):
    path = write_run(runs, "npo_mix")
    data = json.loads(path.read_text())
    data["config"] = {"model": "unlearn_mix", "model_args": {
        "base": str(runs / "checkpoints" / "target"), "pretrained": str(runs / "checkpoints" / "npo_mix"), "alpha": 0.25,
        "dtype": "float32"}}
    path.write_text(json.dumps(data))
    row = build(runs).set_index("model").loc["npo_mix (α=0.25)"]
    assert (row["method"], row["control"], row["α"], row["τ"]) == ("npo", "mix", 0.25, 0.9)


def test_plots_are_written(runs):
    build(runs)
    for name in ("forget_vs_retain_es.png", "alpha_curves.png"):
        data = (runs / "out" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
    assert not list((runs / "out").glob(".*.tmp"))


def test_cli(runs, capsys):
    parser = argparse.ArgumentParser()
    leaderboard.add_arguments(parser)
    args = parser.parse_args([str(runs / "runs"), "--target", "target", "--retain", "retain",
                              "--out", str(runs / "cli"), "--tau", "0.95", "--forget", "01"])
    assert leaderboard.run(args) == 0
    table = pd.read_csv(runs / "cli" / "leaderboard.csv")
    assert list(table["matched"].fillna("")) == [True, False, False, False, True, False]  # bar 0.95 x 0.8 = 0.76
    assert "6 models" in capsys.readouterr().out


def test_mmlu_mini_and_probe_members_stand_in(runs):
    """Without unlearn_mmlu anywhere, MMLU is unlearn_mmlu_mini; without the probes group, its members' mean."""
    for path in (runs / "runs").rglob("results_*.json"):
        data = json.loads(path.read_text())
        if "unlearn_mmlu" in data["results"]:
            data["results"]["unlearn_mmlu_mini"] = data["results"].pop("unlearn_mmlu")
        data["groups"] = {}
        if "checkpoints__ga_mix" in path.parent.name:
            del data["results"]["unlearn_probes"]
            data["results"]["unlearn_probe_piqa"] = scores(acc=0.5, acc_norm=0.6)
            data["results"]["unlearn_probe_arc_easy"] = scores(acc=0.25, acc_norm=0.3)
            data["results"]["unlearn_probe_triviaqa"] = scores(exact_match=0.1)
        path.write_text(json.dumps(data))
    table = build(runs).set_index("model")
    assert table.loc["ga", "MMLU acc"] == 0.25 and table.loc["ga_mix", "probe acc"] == 0.375
    assert table.loc["ga_mix", "probe acc (% target)"] == pytest.approx(93.75)
    assert "MMLU acc = `unlearn_mmlu_mini` acc" in (runs / "out" / "leaderboard.md").read_text()


def test_control_files_of_relative_checkpoints_are_found_from_another_directory(tmp_path, monkeypatch):
    """Runs made in tmp_path as `lm_eval --model_args pretrained=checkpoints/NAME --output_path runs/NAME`:
    control.json is found through the results file's folders, not the current directory."""
    for name in MODELS:
        checkpoint = tmp_path / "checkpoints" / name
        checkpoint.mkdir(parents=True)
        if name in CONTROLS:
            (checkpoint / "control.json").write_text(json.dumps(CONTROLS[name]))
        folder = tmp_path / "runs" / name / f"checkpoints__{name}"
        folder.mkdir(parents=True)
        (folder / "results_2025-01-02T10-00-00.000000.json").write_text(
            json.dumps(results_json(name, Path("checkpoints") / name)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    table = build_leaderboard([tmp_path / "runs"], "target", "retain", tmp_path / "out").set_index("model")
    assert (table.loc["ga_mix", "τ"], table.loc["ga_mix", "α"], table.loc["ga_mix", "control"]) == (0.9, 0.4375, "mix")
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert f"- ga_mix: control: {tmp_path.resolve() / 'checkpoints' / 'ga_mix' / 'control.json'}\n" in text
    looked = text.split("- target: control: none found (looked in ")[1].split(")\n")[0].split(", ")
    assert looked[0] == str(tmp_path.resolve() / "runs" / "target" / "checkpoints__target" / "checkpoints" / "target" / "control.json")
    assert looked[-1] == str(elsewhere / "checkpoints" / "target" / "control.json")


def test_an_absolute_checkpoint_is_looked_for_only_where_it_is(runs):
    (runs / "checkpoints" / "ga_mix" / "control.json").unlink()
    build(runs)
    text = (runs / "out" / "leaderboard.md").read_text()
    assert f"- ga_mix: control: none found (looked in {runs / 'checkpoints' / 'ga_mix' / 'control.json'})" in text
    assert f"- npo_mix: control: {runs / 'checkpoints' / 'npo_mix' / 'control.json'}" in text
