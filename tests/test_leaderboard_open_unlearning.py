"""open-unlearning result files in the leaderboard: the shared anchors convert to our keys with the same values."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from harness_ext.leaderboard import LeaderboardError, build_leaderboard
from harness_ext.leaderboard import open_unlearning
from tests.conftest import SHARED, requires
from tests.test_leaderboard import MODELS, write_run

ANCHORS = SHARED / "anchors"
PLAIN, CHAT = ANCHORS / "open-unlearning-smollm2-forget01", ANCHORS / "open-unlearning-smollm2-chat-forget01"
FORGET, UTILITY, MIA = "unlearn_tofu_forget01", "unlearn_tofu_utility", "unlearn_tofu_mia_forget01"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "leaderboard.md"
pytestmark = requires(PLAIN, "the open-unlearning anchors")


def value(run, task: str, key: str) -> float:
    return run.results["results"][task][f"{key},none"]


@pytest.mark.parametrize("anchor", [PLAIN, CHAT], ids=["plain", "chat"])
def test_anchor_converts_to_our_keys_with_the_same_values(anchor):
    evaluation = json.loads((anchor / "TOFU_EVAL.json").read_text())
    run = open_unlearning.load(anchor / "TOFU_EVAL.json")
    expected = {(FORGET, "prob"): "forget_Q_A_Prob", (FORGET, "truth_ratio"): "forget_truth_ratio",
                (FORGET, "es"): "extraction_strength", (FORGET, "em"): "exact_memorization",
                (FORGET, "rougeL_recall"): "forget_Q_A_ROUGE", (UTILITY, "model_utility"): "model_utility",
                (UTILITY, "prob_ra"): "ra_Q_A_Prob_normalised", (UTILITY, "truth_ratio_wf"): "wf_Truth_Ratio",
                (MIA, "privleak"): "privleak", (MIA, "auc_mink"): "mia_min_k"}
    for (task, key), theirs in expected.items():
        assert value(run, task, key) == evaluation[theirs]["agg_value"], theirs
    assert math.isnan(value(run, FORGET, "forget_quality"))  # their null: no retain logs
    assert value(run, "open_unlearning", "forget_Q_A_PARA_Prob") == evaluation["forget_Q_A_PARA_Prob"]["agg_value"]
    kept = sum(len(scores) for scores in run.results["results"].values())
    assert kept == len(evaluation)  # nothing dropped


def test_headline_values_of_the_anchor():
    run = open_unlearning.load(PLAIN / "TOFU_EVAL.json")
    assert value(run, FORGET, "prob") == pytest.approx(0.143329, abs=1e-6)  # the anchor README's numbers
    assert value(run, FORGET, "es") == pytest.approx(0.041393, abs=1e-6)
    assert value(run, MIA, "auc_mink") == pytest.approx(0.478125, abs=1e-9)
    assert value(run, MIA, "privleak") == pytest.approx(4.375, abs=1e-6)
    assert run.about["convention"] == "open-unlearning"


def test_summary_needs_the_split_and_agrees_with_the_eval_file(tmp_path):
    summary = tmp_path / "TOFU_SUMMARY.json"
    shutil.copy(PLAIN / "TOFU_SUMMARY.json", summary)
    with pytest.raises(LeaderboardError, match=r"TOFU_SUMMARY.json has no per-item values .*pass --forget"):
        open_unlearning.load(summary)
    from_summary = open_unlearning.load(summary, forget="01").results["results"]
    from_eval = open_unlearning.load(PLAIN / "TOFU_EVAL.json").results["results"]
    for task, scores in from_summary.items():
        for key, number in scores.items():
            assert number == from_eval[task][key] or (math.isnan(number) and math.isnan(from_eval[task][key]))


def test_split_comes_from_the_per_item_values():
    with pytest.raises(LeaderboardError, match=r"its 40 forget items are forget01, not --forget 05"):
        open_unlearning.load(PLAIN / "TOFU_EVAL.json", forget="05")


@pytest.mark.parametrize("content, message", [
    ("{not json", r"is not valid JSON"),
    ('{"forget_Q_A_Prob": 0.5}', r"metric 'forget_Q_A_Prob' has no 'agg_value'"),
    ('{"forget_Q_A_Prob": {"agg_value": "high"}}', r"metric 'forget_Q_A_Prob' is 'high', not a number or null"),
    ("[1, 2]", r"expected a JSON object of open-unlearning metrics, got list"),
])
def test_malformed_file_is_one_clear_error_naming_it(tmp_path, content, message):
    path = tmp_path / "broken" / "TOFU_EVAL.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(LeaderboardError, match=message) as error:
        build_leaderboard([path.parent], "broken", None, tmp_path / "out", forget="01")
    assert str(path) in str(error.value)


def test_anchor_folder_is_a_row_of_the_leaderboard(tmp_path):
    for name in MODELS:
        write_run(tmp_path, name)
    table = build_leaderboard([tmp_path / "runs", ANCHORS], "target", "retain", tmp_path / "out").set_index("model")
    evaluation = json.loads((PLAIN / "TOFU_EVAL.json").read_text())
    row = table.loc[PLAIN.name]
    assert (row["group"], row["control"]) == ("plain", "none")
    assert row["forget ES"] == evaluation["extraction_strength"]["agg_value"]
    assert row["forget truth ratio"] == evaluation["forget_truth_ratio"]["agg_value"]
    assert row["privleak"] == evaluation["privleak"]["agg_value"]
    assert row["forget_Q_A_PERT_Prob"] == evaluation["forget_Q_A_PERT_Prob"]["agg_value"]  # kept under its name
    assert math.isnan(row["retain ES"])  # open-unlearning has no retain ES: blank, not 0
    assert table.loc[CHAT.name, "model utility"] == json.loads((CHAT / "TOFU_SUMMARY.json").read_text())["model_utility"]
    assert math.isnan(table.loc["ga", "forget_Q_A_PERT_Prob"])
    notes = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "- forget_Q_A_PERT_Prob: an open-unlearning key with no counterpart in our tasks — target, retain," in notes


def test_documented_mapping_is_the_code():
    """docs/leaderboard.md's table lists exactly open_unlearning.KEYS."""
    rows = re.findall(r"^\| `(\w+)` \| `([\w{}]+)` \| `(\w+)` \|", DOCS.read_text(), flags=re.M)
    assert {theirs: (task, ours) for theirs, task, ours in rows} == open_unlearning.KEYS
