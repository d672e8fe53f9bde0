"""``run_study`` end to end on tiny models: every cell written, the same numbers twice, resumed after an interrupt.

The family: a tiny Llama that memorised TOFU forget01 (the target), a same-shaped model with fresh
random weights, and three mixtures of the two, so that every metric spreads over the family.
"""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest
import torch
from scipy import stats

from harness_ext.robustness import AttackSettings, ScoringSettings, StudyConfig, build_family, run_study
from harness_ext.robustness.attacks import DEFAULT_ATTACKS, get_attacks
from harness_ext.robustness.scoring import CLEAN
from harness_ext.robustness.study import cells

SETTINGS = AttackSettings(forget="forget01", relearn_steps=2, relearn_lr=1e-3, probe_layer=-2)
SCORING = ScoringSettings(forget="forget01", limit=4, batch_size=8)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def family(memorised_model, tmp_path_factory):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    fresh = tmp_path_factory.mktemp("family") / "fresh"
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(memorised_model)).save_pretrained(fresh)
    AutoTokenizer.from_pretrained(memorised_model).save_pretrained(fresh)
    return build_family([memorised_model, fresh], mix_grid=[0.3, 0.6, 0.85], target=memorised_model)


@pytest.fixture(scope="module")
def study(family, tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    lines = []
    return out, run_study(family, StudyConfig(DEFAULT_ATTACKS, SETTINGS, SCORING), out, log=lines.append), lines


def test_every_cell_is_written(study, family):
    out, result, lines = study
    assert len(family) == 5 and len(lines) == 5 * (1 + len(DEFAULT_ATTACKS))
    table = pd.read_csv(out / "robustness.csv")
    expected = {(metric, attack.name, split) for metric, attack, split in cells(get_attacks(list(DEFAULT_ATTACKS)))}
    assert set(zip(table["metric"], table["attack"], table["split"])) == expected and len(table) == len(expected)
    assert (table["n"] == 5).all()
    for member, by_attack in result["scores"].items():
        assert set(by_attack) == {CLEAN, *DEFAULT_ATTACKS}
        for attack, by_split in by_attack.items():
            assert all(math.isfinite(value) for values in by_split.values() for value in values.values()), (member, attack)
    forget_es = [result["scores"][member.name][CLEAN]["forget"]["es"] for member in family]
    assert max(forget_es) - min(forget_es) > 0.3, "the family spreads from memorised to random"
    assert result["sentence"] in (out / "robustness.md").read_text()
    assert (out / "robustness.png").stat().st_size > 10_000


def test_statistics_follow_the_scores_and_the_attacks_act(study):
    _, result, _ = study
    scores = result["scores"]
    for row in result["statistics"]:
        before = [scores[member][CLEAN][row["split"]][row["metric"]] for member in scores]
        after = [scores[member][row["attack"]][row["split"]][row["metric"]] for member in scores]
        if len(set(before)) > 1 and len(set(after)) > 1:
            assert row["pcc"] == pytest.approx(stats.pearsonr(before, after).statistic, abs=1e-9)
    target = scores[next(iter(scores))]
    for attack in ("noise", "jailbreak", "paraphrase", "relearn", "quantize4", "probe_lens"):
        assert target[attack]["forget"] != target[CLEAN]["forget"], f"{attack} changed nothing"


def test_scores_match_a_direct_lm_eval_run(study, family):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    _, result, _ = study
    member = family[0]
    lm = UnlearnHFLM(pretrained=str(member.checkpoint), batch_size=4, device="cpu")
    direct = evaluate(lm, ["unlearn_tofu_forget01"], limit=4, metadata={"attack": "noise", "attack_rate": 0.3},
                      env_info=False)["results"]["unlearn_tofu_forget01"]
    study_scores = result["scores"][member.name]["noise"]["forget"]
    for metric in ("prob", "es", "em", "truth_ratio", "rougeL_recall", "es_para"):
        assert study_scores[metric] == pytest.approx(direct[f"{metric},none"], rel=1e-4, abs=1e-6), metric


def test_a_second_study_gives_identical_numbers(study, family, tmp_path):
    _, first, _ = study
    again = run_study(family, StudyConfig(("relearn",), SETTINGS, SCORING), tmp_path, log=lambda line: None)
    for member in again["scores"]:
        for attack in (CLEAN, "relearn"):
            assert again["scores"][member][attack] == first["scores"][member][attack], (member, attack)


def test_an_interrupted_study_resumes_where_it_stopped(study, family, tmp_path):
    out, first, _ = study
    shutil.copytree(out / "cache", tmp_path / "cache")
    (tmp_path / "cache" / family[1].name / "noise.json").unlink()  # never written
    stale = tmp_path / "cache" / family[3].name / "clean.json"  # made with other settings
    stale.write_text(json.dumps(json.loads(stale.read_text()) | {"key": "another configuration"}))

    def interrupt(line):
        raise KeyboardInterrupt

    config = StudyConfig(DEFAULT_ATTACKS, SETTINGS, SCORING)
    with pytest.raises(KeyboardInterrupt):
        run_study(family, config, tmp_path, log=interrupt)
    assert not (tmp_path / "robustness.md").exists()
    lines = []
    resumed = run_study(family, config, tmp_path, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"[robustness] {family[3].name} / clean")
    assert resumed["scores"] == first["scores"]
    assert pd.DataFrame(resumed["statistics"]).equals(pd.DataFrame(first["statistics"]))
