"""Controls: bisection over α, calibrated mixing, early stopping, and the target's cached metric."""

from __future__ import annotations

import json

import pytest
import torch

from harness_ext.evaluation import evaluate
from harness_ext.mixing import mix_state_dicts
from harness_ext.models import UnlearnHFLM
from harness_ext.unlearning.api import unlearn
from harness_ext.unlearning.commands import add_unlearn_arguments, run_unlearn
from harness_ext.unlearning.control import TOLERANCE, bisect_alpha
from harness_ext.unlearning.metric import Calibration, MetricSpec
from tests.unlearning_fixtures import forget_rows, load, parsed, retain_rows, same_weights

GA = {"max_steps": 5, "lr": 1e-3}


@pytest.mark.parametrize("bar", [0.8, 0.5, 0.31, 0.999, 0.01])
def test_bisection_finds_the_largest_alpha_on_the_1_64_grid_that_meets_the_bar(bar):
    def score(alpha):
        return 1 - alpha

    alpha, trace = bisect_alpha(score, bar)
    assert score(alpha) >= bar and score(alpha + TOLERANCE) < bar
    assert alpha * 64 == int(alpha * 64)
    assert len(trace) == 7 and trace[0]["alpha"] == 1.0
    assert any(entry["alpha"] == alpha + TOLERANCE and not entry["meets_bar"] for entry in trace)


def test_bisection_returns_one_when_the_unlearned_model_already_meets_the_bar():
    alpha, trace = bisect_alpha(lambda alpha: 1.0, 0.9)
    assert alpha == 1.0 and trace == [{"alpha": 1.0, "metric": 1.0, "meets_bar": True}]


def distance(model, reference: dict) -> float:
    return sum((value.float() - reference[name].float()).square().sum().item()
               for name, value in model.state_dict().items()) ** 0.5


@pytest.fixture(scope="module")
def uncontrolled(memorised_model, tmp_path_factory):
    """GA for 5 steps without control, and how far it moved the weights."""
    out = tmp_path_factory.mktemp("control") / "none"
    unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), out, **GA)
    target, _ = load(memorised_model)
    model, _ = load(out)
    return out, distance(model, target.state_dict())


def linear_metric(memorised_model, scale: float):
    """A fake calibration metric, 1 − ‖θ − θ_target‖ / scale: exactly 1 − α along the mixing path."""
    target = load(memorised_model)[0].state_dict()
    return lambda model, tokenizer: 1 - distance(model, target) / scale


def test_mix_control_writes_the_calibrated_mixture(memorised_model, uncontrolled, tmp_path):
    none_out, moved = uncontrolled
    metric = linear_metric(memorised_model, moved)
    record = unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "mix",
                     control="mix", tau=0.8, metric_fn=metric, **GA)
    assert record["alpha"] == 12 / 64  # 1 − 12/64 ≥ 0.8 > 1 − 13/64
    target, _ = load(memorised_model)
    none, _ = load(none_out)
    mixed, _ = load(tmp_path / "mix")
    expected = mix_state_dicts(target.state_dict(), none.state_dict(), record["alpha"])
    assert all(torch.equal(value, expected[name]) for name, value in mixed.state_dict().items())
    beyond = mix_state_dicts(target.state_dict(), none.state_dict(), record["alpha"] + TOLERANCE)
    none.load_state_dict(beyond)
    assert metric(mixed, None) >= record["calibration"]["bar"] > metric(none, None)
    saved = json.loads((tmp_path / "mix" / "control.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert {"method", "control", "tau", "alpha", "trace"} <= saved.keys()


def test_early_stop_keeps_the_last_model_above_the_bar(memorised_model, uncontrolled, tmp_path):
    _, moved = uncontrolled
    record = unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "early",
                     control="early-stop", tau=0.5, eval_every=1, metric_fn=linear_metric(memorised_model, moved), **GA)
    trace = record["trace"]
    assert not trace[-1]["meets_bar"] and all(entry["meets_bar"] for entry in trace[:-1])
    kept = record["kept_step"]
    assert kept == trace[-1]["step"] - 1 >= 1
    unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "short", **{**GA, "max_steps": kept})
    assert same_weights(load(tmp_path / "early")[0], load(tmp_path / "short")[0])


def test_mix_control_on_es_retain_through_the_tasks(memorised_model, tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "ckpt"
    args = parsed(add_unlearn_arguments, [
        "--model", str(memorised_model), "--method", "ga", "--forget", "tofu:forget01", "--retain", "tofu:retain90",
        "--out", str(out), "--control", "mix", "--tau", "0.9", "--calibrate-limit", "4",
        "--max-steps", "5", "--lr", "1e-3",
    ])
    assert run_unlearn(args) == 0
    record = json.loads((out / "control.json").read_text())
    calibration = record["calibration"]
    assert (calibration["metric"], calibration["task"], calibration["limit"]) == ("es_retain", "unlearn_tofu_utility", 4)
    assert calibration["bar"] == pytest.approx(0.9 * calibration["target_value"])
    assert calibration["generates"] is False and calibration["target_work"]["generations"] == 0
    assert all(entry["generations"] == 0 and entry["forward_batches"] > 0 for entry in record["trace"])
    chosen = [entry for entry in record["trace"] if entry["alpha"] == record["alpha"]]
    assert record["alpha"] == 0 or (chosen and chosen[0]["meets_bar"])
    assert record["alpha"] == 1 or any(
        entry["alpha"] == record["alpha"] + TOLERANCE and not entry["meets_bar"] for entry in record["trace"]
    )
    model, tokenizer = load(out)
    results = evaluate(UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=16), ["unlearn_tofu_utility"], limit=4)
    assert results["results"]["unlearn_tofu_utility"]["es_retain,none"] >= calibration["bar"]
    target, tokenizer = load(memorised_model)
    assert Calibration(MetricSpec(limit=4)).target_value(target, tokenizer) == (calibration["target_value"], True)


def test_ga_bound_control_stops_gradient_ascent_on_sequences_already_above_the_bound(memorised_model, tmp_path):
    common = {"max_steps": 3, "lr": 1e-3, "weight_decay": 0.0}
    record = unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "bound0",
                     control="ga-bound", ga_bound=0.0, **common)  # every forget NLL is above 0: no gradient
    assert (record["control"], record["hyperparameters"]["ga_bound"]) == ("ga-bound", 0.0)
    assert same_weights(load(tmp_path / "bound0")[0], load(memorised_model)[0])
    unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "bound9",
            control="ga-bound", ga_bound=9.0, **common)  # every forget NLL is below 9: plain GA
    unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "plain", **common)
    assert same_weights(load(tmp_path / "bound9")[0], load(tmp_path / "plain")[0])
