"""Float32 master weights (bf16 only as Accelerate autocast), float32 mixing, the TOFU learning-rate
schedule, and ``finetune_model`` (in-memory fine-tuning for relearning attacks)."""

from __future__ import annotations

import json

import pytest
import torch

from harness_ext.unlearning.api import finetune_model, mix, unlearn
from harness_ext.unlearning.commands import add_unlearn_arguments, run_unlearn
from harness_ext.unlearning.config import TrainConfig, UnlearnError
from harness_ext.unlearning.train import make_schedule
from tests.unlearning_fixtures import answer_nll, forget_rows, load, parsed, retain_rows


def test_pure_bf16_training_is_refused_with_the_fix(memorised_model, tmp_path, capsys):
    args = parsed(add_unlearn_arguments, [
        "--model", str(memorised_model), "--method", "ga", "--forget", "tofu:forget01", "--retain", "tofu:retain90",
        "--out", str(tmp_path / "out"), "--dtype", "bfloat16",
    ])
    assert run_unlearn(args) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "training keeps float32 master weights" in error and "--mixed-precision bf16" in error
    model, tokenizer = load(memorised_model)
    with pytest.raises(UnlearnError, match="has bfloat16 weights; training and mixing keep float32"):
        finetune_model(model.to(torch.bfloat16), forget_rows(), tokenizer=tokenizer, steps=1)
    assert not (tmp_path / "out").exists()


def test_a_bf16_checkpoint_trains_float32_master_weights_under_bf16_autocast(memorised_model, tmp_path):
    model, tokenizer = load(memorised_model)
    stored = tmp_path / "bf16"
    model.to(torch.bfloat16).save_pretrained(stored)
    tokenizer.save_pretrained(stored)
    unlearn(str(stored), "ga", forget_rows(), retain_rows(), tmp_path / "out", max_steps=1, lr=1e-5, mixed_precision="bf16")
    start = {name: value.float() for name, value in model.state_dict().items()}
    trained, _ = load(tmp_path / "out")
    weights = trained.state_dict()
    assert {value.dtype for value in weights.values()} == {torch.float32}
    projections = [name for name in start if name.startswith("model.layers.") and "_proj" in name]
    total = sum(start[name].numel() for name in projections)
    changed = sum(int((weights[name] != start[name]).sum()) for name in projections)
    # a 1e-5 AdamW step moves almost every float32 weight; in bf16 (8 bits of mantissa) nearly all would round away
    kept_in_bf16 = sum(int((weights[name].to(torch.bfloat16).float() != start[name]).sum()) for name in projections)
    assert changed > 0.9 * total and kept_in_bf16 < 0.1 * total


def test_mixing_is_float32_and_exact_at_an_intermediate_alpha(memorised_model, tmp_path):
    unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "ga", max_steps=2, lr=1e-3)
    record = mix(str(memorised_model), str(tmp_path / "ga"), tmp_path / "mixed", alpha=0.3, device="cpu")
    assert record["device"] == "cpu" and json.loads((tmp_path / "mixed" / "control.json").read_text())["alpha"] == 0.3
    target, unlearned, mixed = (load(path)[0].state_dict() for path in (memorised_model, tmp_path / "ga", tmp_path / "mixed"))
    for name, value in mixed.items():
        assert value.dtype == torch.float32
        assert torch.equal(value, 0.7 * target[name] + 0.3 * unlearned[name])


def test_linear_schedule_warms_up_one_epoch_then_decays_to_zero():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=1e-3)
    schedule = make_schedule(optimizer, 4, 8, TrainConfig(lr=1e-3, lr_schedule="linear", warmup_epochs=1))
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4])
    constant = make_schedule(torch.optim.AdamW([parameter], lr=1e-3), 4, 8, TrainConfig(lr=1e-3))
    assert constant.get_last_lr() == [1e-3]
    with pytest.raises(UnlearnError, match="unknown learning-rate schedule 'cosine'"):
        TrainConfig(lr_schedule="cosine")


def test_finetune_model_relearns_in_memory_seeded_and_writes_nothing(memorised_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    unlearn(str(memorised_model), "ga", forget_rows(), retain_rows(), tmp_path / "ga", max_steps=5, lr=1e-3)
    before = sorted(tmp_path.rglob("*"))
    rows, runs = forget_rows()[:10], []
    for _ in range(2):
        model, tokenizer = load(tmp_path / "ga")
        forgotten = answer_nll(model, tokenizer, rows)
        returned = finetune_model(model, rows, tokenizer=tokenizer, steps=4, lr=1e-3, seed=3, batch_size=5)
        assert returned is model and not model.training
        runs.append((forgotten, answer_nll(model, tokenizer, rows), model.state_dict()))
    (forgotten, relearned, first), (_, _, second) = runs
    assert relearned < forgotten - 0.5
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert sorted(tmp_path.rglob("*")) == before
