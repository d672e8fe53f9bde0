"""The calibration metric: forward-only when no generation feeds it, its work counted, measured on the training device."""

from __future__ import annotations

import pytest
import torch

from harness_ext.evaluation import evaluate
from harness_ext.models import UnlearnHFLM
from harness_ext.unlearning.api import unlearn
from harness_ext.unlearning.metric import MetricSpec, lm_eval_metric, needs_generation
from tests.unlearning_fixtures import forget_rows, load, retain_rows


@pytest.mark.parametrize(
    ("task", "metric", "generates"),
    [
        ("unlearn_tofu_utility", "es_retain", False),
        ("unlearn_tofu_utility", "prob_retain", False),
        ("unlearn_tofu_forget01", "truth_ratio", False),
        ("unlearn_tofu_utility", "rougeL_recall_retain", True),
        ("unlearn_tofu_utility", "model_utility", True),
        ("unlearn_muse_news_knowmem_retain", "rougeL_f1", True),
    ],
)
def test_which_metrics_need_generations(task, metric, generates):
    assert needs_generation(MetricSpec(metric, task)) is generates


def test_es_retain_calibration_runs_zero_generations_and_equals_the_full_evaluation(memorised_model):
    model, tokenizer = load(memorised_model)
    work = []
    value = lm_eval_metric(MetricSpec(limit=4), work)(model, tokenizer)
    assert work[0]["generations"] == 0 and work[0]["forward_batches"] > 0 and work[0]["sequences_scored"] > 0
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=16)
    full = evaluate(lm, ["unlearn_tofu_utility"], limit=4, env_info=False)["results"]["unlearn_tofu_utility"]
    assert lm.stats["generations"] > 0
    assert value == full["es_retain,none"]
    generated = []
    lm_eval_metric(MetricSpec("rougeL_recall_retain", limit=2), generated)(model, tokenizer)
    assert generated[0]["generations"] == 2


def test_every_control_measurement_runs_on_the_training_device_in_float32(memorised_model, tmp_path):
    seen = []

    def metric_fn(model, tokenizer):
        parameter = next(model.parameters())
        seen.append((parameter.device, parameter.dtype))
        return 1.0 - 0.1 * len(seen)  # falls below the bar after a few measurements

    for control in ("mix", "early-stop"):
        unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / control, control=control, tau=0.75,
                eval_every=1, metric_fn=metric_fn, max_steps=3, lr=1e-3)
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert len(seen) > 4 and set(seen) == {(expected, torch.float32)}
