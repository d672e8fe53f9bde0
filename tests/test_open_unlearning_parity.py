"""The open-unlearning convention reproduces open-unlearning's own evaluator on SmolLM2 + TOFU forget01.

Reference numbers: ../shared/anchors/open-unlearning-smollm2-forget01 (their evaluator's output).
The default suite checks the first documents item by item; the slow test checks all 40 aggregates.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ANCHORS, requires

pytestmark = requires(ANCHORS, "open-unlearning anchors")

PER_ITEM = {  # our per-document key → (their metric, the field of its value_by_index entry)
    "prob": ("forget_Q_A_Prob", "prob"),
    "es": ("extraction_strength", "score"),
    "em": ("exact_memorization", "score"),
    "rougeL_recall": ("forget_Q_A_ROUGE", "rougeL_recall"),
}
AGGREGATES = {"prob": "forget_Q_A_Prob", "es": "extraction_strength", "em": "exact_memorization",
              "rougeL_recall": "forget_Q_A_ROUGE", "truth_ratio": "forget_truth_ratio"}
FIRST_DOCS = 8


def _anchor() -> dict:
    return json.loads((ANCHORS / "TOFU_EVAL.json").read_text())


def _run(smollm2, samples=None):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    lm = UnlearnHFLM(pretrained=str(smollm2), dtype="float32", batch_size=8, device="cpu")
    return evaluate(lm, ["unlearn_tofu_forget01"], metadata={"convention": "open-unlearning"},
                    log_samples=True, samples=samples)


def test_first_documents_match_open_unlearning_item_by_item(smollm2, tofu_data_dir):
    anchor = _anchor()
    run = _run(smollm2, samples={"unlearn_tofu_forget01": list(range(FIRST_DOCS))})
    samples = run["samples"]["unlearn_tofu_forget01"]
    assert len(samples) == FIRST_DOCS
    for sample in samples:
        index = str(sample["doc"]["index"])
        for key, (metric, field) in PER_ITEM.items():
            assert sample[key] == pytest.approx(anchor[metric]["value_by_index"][index][field], rel=1e-3, abs=1e-6), (index, key)
        ratio = anchor["forget_truth_ratio"]["value_by_index"][index]["score"]
        assert sample["forget_quality"]["truth_ratio"] == pytest.approx(ratio, rel=1e-3), (index, "truth ratio")


@pytest.mark.slow
def test_all_aggregates_match_open_unlearning(smollm2, tofu_data_dir):
    anchor = _anchor()
    ours = _run(smollm2)["results"]["unlearn_tofu_forget01"]
    for key, metric in AGGREGATES.items():
        assert ours[f"{key},none"] == pytest.approx(anchor[metric]["agg_value"], rel=1e-3), key
