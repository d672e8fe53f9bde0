"""The robustness study without models: the family, the cells, the statistics, the ranking and the report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness_ext.cli import main
from harness_ext.robustness.attacks import ATTACKS, get_attacks
from harness_ext.robustness.family import FamilyError, build_family
from harness_ext.robustness.report import FILES, write_report
from tests.conftest import TOFU_DIR
from harness_ext.robustness.scoring import CLEAN, METRICS
from harness_ext.robustness.study import cells, ranking, ranking_sentence, statistics_rows
from unlearn_metrics.robustness import pair_statistics


def checkpoint(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def test_fewer_than_four_models_is_an_error(tmp_path, capsys):
    paths = [checkpoint(tmp_path / name) for name in ("a", "b", "c")]
    with pytest.raises(FamilyError, match=r"at least 4 models, got 3 \(a, b, c\)"):
        build_family(paths)
    assert main(["robustness", *map(str, paths), "--out", str(tmp_path / "out")]) == 2
    assert "at least 4 models" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_demo_run_folder_and_mixing_grid(tmp_path):
    run = tmp_path / "demo"
    for name in ("base", "target", "retain", "ga-none", "ga-mix"):
        checkpoint(run / "work" / "models" / name)
    family = build_family([run])
    assert [member.name for member in family] == ["ga-mix", "ga-none", "retain", "target"]  # the untrained base is left out
    grid = build_family([run], mix_grid=[0.25, 0.5])  # the demo's target by default; target and retain are not mixed
    assert [member.name for member in grid][4:] == ["ga-mix@0.25", "ga-mix@0.5", "ga-none@0.25", "ga-none@0.5"]
    assert grid[-1].alpha == 0.5 and grid[-1].target == run / "work" / "models" / "target"
    with pytest.raises(FamilyError, match="needs --target"):
        build_family([checkpoint(tmp_path / name) for name in "wxyz"], mix_grid=[0.5])
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        build_family([run], mix_grid=[1.5])


def test_bad_folders_and_attacks_are_named(tmp_path):
    with pytest.raises(FamilyError, match="neither a checkpoint folder"):
        build_family([tmp_path])
    with pytest.raises(ValueError, match="unknown attack.*gcg.*known: noise"):
        get_attacks(["noise", "gcg"])


def fake_scores(attacks, members=6, seed=0) -> dict:
    """Scores of a family: each attack moves the clean values by its own linear map plus noise."""
    generator = np.random.default_rng(seed)
    scores = {}
    for index in range(members):
        clean = {split: {metric.name: float(generator.uniform()) for metric in METRICS if split in metric.keys}
                 for split in ("forget", "retain")}
        scores[f"m{index}"] = {CLEAN: clean} | {attack.name: {
            split: {metric: 0.5 * value + 0.1 * float(generator.normal()) for metric, value in values.items()}
            for split, values in clean.items()} for attack in attacks}
    return scores


def test_every_cell_gets_its_statistics():
    attacks = get_attacks(["paraphrase", "noise"])
    scores = fake_scores(attacks)
    rows = statistics_rows(scores, attacks)
    keys = {(row["metric"], row["attack"], row["split"]) for row in rows}
    assert ("es_para", "paraphrase", "forget") not in keys  # the paraphrased question is what es_para reads
    assert ("mia_auc_loss", "paraphrase", "forget") not in keys  # the MIA documents have no paraphrased question
    assert ("es_para", "noise", "forget") in keys and ("mia_auc_loss", "noise", "retain") not in keys
    assert len(rows) == len(list(cells(attacks))) == 2 * 2 * 5 + 2
    row = next(row for row in rows if row[("metric")] == "es" and row["attack"] == "noise" and row["split"] == "retain")
    before = [scores[member][CLEAN]["retain"]["es"] for member in scores]
    after = [scores[member]["noise"]["retain"]["es"] for member in scores]
    assert {key: row[key] for key in pair_statistics(before, after)} == pytest.approx(pair_statistics(before, after))
    assert row["surface"] is False and next(r for r in rows if r["attack"] == "paraphrase")["surface"] is True


def test_ranking_by_mean_pcc_and_surface_attacks():
    rows = [{"metric": "a", "attack": "noise", "split": "forget", "surface": False, "pcc": 0.2, "slope": 0.1},
            {"metric": "a", "attack": "jailbreak", "split": "forget", "surface": True, "pcc": 0.9, "slope": 0.8},
            {"metric": "b", "attack": "noise", "split": "forget", "surface": False, "pcc": 0.9, "slope": 0.9},
            {"metric": "b", "attack": "jailbreak", "split": "forget", "surface": True, "pcc": 0.7, "slope": 1.1},
            {"metric": "c", "attack": "noise", "split": "forget", "surface": False, "pcc": math.nan, "slope": math.nan}]
    ranked = ranking(rows)
    assert [entry["metric"] for entry in ranked] == ["b", "a", "c"]  # means 0.8, 0.55, none
    assert ranked[0]["mean_pcc"] == pytest.approx(0.8) and ranked[1]["surface_slope"] == pytest.approx(0.8)
    sentence = ranking_sentence(ranked, [ATTACKS["noise"], ATTACKS["jailbreak"]])
    assert sentence.startswith("Metrics by mean PCC over all attacks and both splits, most robust first: b (0.80) > a (0.55)")
    assert "surface-only attacks (jailbreak; ideal PCC 1 and slope 1): a (0.90, slope 0.80) > b (0.70, slope 1.10)" in sentence


def test_report_files(tmp_path):
    attacks = get_attacks(["noise", "probe_lens"])
    scores = fake_scores(attacks, members=5)
    rows = statistics_rows(scores, attacks)
    ranked = ranking(rows)
    study = {"sentence": ranking_sentence(ranked, attacks), "ranking": ranked, "statistics": rows,
             "models": [{"name": name, "checkpoint": f"/ckpt/{name}"} for name in scores],
             "attacks": {attack.name: {"surface": attack.surface, "params": {}} for attack in attacks}, "scores": scores}
    write_report(study, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FILES)
    table = pd.read_csv(tmp_path / "robustness.csv")
    assert len(table) == len(rows) and table["pcc"].tolist() == pytest.approx([row["pcc"] for row in rows], rel=1e-5)
    report = (tmp_path / "robustness.md").read_text()
    assert report.splitlines()[2] == study["sentence"]
    assert "| es " in report and "noise (forget)" in report and "probe_lens (retain)" in report
    assert json.loads((tmp_path / "robustness.json").read_text())["statistics"][0]["metric"] == "prob"
    assert (tmp_path / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cached_scores_key_on_code_and_data(tmp_path, monkeypatch):
    """A robustness evaluation cached under one code fingerprint or one byte of TOFU data is not reused
    after either changes."""
    import shutil

    from harness_ext import provenance
    from harness_ext.robustness.scoring import Scorer, ScoringSettings

    data = tmp_path / "data"
    shutil.copytree(TOFU_DIR, data / "tofu")
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(data))
    key = lambda: Scorer(ScoringSettings(forget="forget01"), tmp_path / "cache").key("m", "noise", {})  # noqa: E731
    before = key()
    assert key() == before
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "edited code")
    edited = key()
    assert edited != before
    path = data / "tofu" / "holdout01.jsonl"
    path.write_bytes(path.read_bytes().replace(b"a", b"b", 1))
    assert key() != edited
