"""The open-unlearning convention reproduces open-unlearning's own evaluator on SmolLM2 + TOFU forget01.

Reference numbers: ../shared/anchors/open-unlearning-smollm2-forget01 (their evaluator's output).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ANCHORS, SHARED, requires

ANCHOR_KEYS = {  # our key in unlearn_tofu_forget01 → open-unlearning's metric
    "prob": "forget_Q_A_Prob",
    "es": "extraction_strength",
    "em": "exact_memorization",
    "rougeL_recall": "forget_Q_A_ROUGE",
}


@pytest.fixture(scope="module")
def parity_run(smollm2, tofu_data_dir):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    lm = UnlearnHFLM(pretrained=str(smollm2), dtype="float32", batch_size=8, device="cpu")
    return evaluate(lm, ["unlearn_tofu_forget01"], metadata={"convention": "open-unlearning"}, log_samples=True)


@requires(ANCHORS, "open-unlearning anchors")
def test_aggregates_match_open_unlearning(parity_run):
    anchor = json.loads((ANCHORS / "TOFU_EVAL.json").read_text())
    ours = parity_run["results"]["unlearn_tofu_forget01"]
    for key, theirs in ANCHOR_KEYS.items():
        assert ours[f"{key},none"] == pytest.approx(anchor[theirs]["agg_value"], rel=1e-3), key
    assert ours["truth_ratio,none"] == pytest.approx(anchor["forget_truth_ratio"]["agg_value"], rel=1e-3)


@requires(ANCHORS, "open-unlearning anchors")
def test_per_item_truth_ratios_match_open_unlearning(parity_run):
    anchor = json.loads((ANCHORS / "TOFU_EVAL.json").read_text())["forget_truth_ratio"]["value_by_index"]
    samples = parity_run["samples"]["unlearn_tofu_forget01"]
    for sample in samples:
        value = sample["forget_quality"]
        assert value["truth_ratio"] == pytest.approx(anchor[str(value["index"])]["score"], rel=1e-3)
