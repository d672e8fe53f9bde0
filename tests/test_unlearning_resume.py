"""Resumable runs: an interrupted run resumed from its latest resume state equals an uninterrupted one."""

from __future__ import annotations

import json

import pytest

from harness_ext.unlearning import train as train_module
from harness_ext.unlearning.api import finetune, unlearn
from harness_ext.unlearning.commands import add_unlearn_arguments, run_unlearn
from harness_ext.unlearning.config import UnlearnError
from harness_ext.unlearning.resume import resume_folder
from tests.unlearning_fixtures import forget_rows, load, parsed, retain_rows, same_weights


class Interrupted(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way up handles it."""


def interrupt_at(monkeypatch, step: int) -> None:
    """Make the ``step``-th optimiser step of the next run raise :class:`Interrupted`, before it changes anything."""
    real_step, calls = train_module.train_step, []

    def train_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            monkeypatch.setattr(train_module, "train_step", real_step)
            raise Interrupted
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", train_step)


def unlearn_argv(model, out, *extra: str) -> list[str]:
    return ["--model", str(model), "--method", "npo", "--forget", "tofu:forget01", "--retain", "tofu:retain90",
            "--out", str(out), "--max-steps", "12", "--batch-size", "8", "--lr", "1e-3",
            "--lr-schedule", "linear", "--warmup-epochs", "1", "--save-every", "4", *extra]


def run_cli(argv: list[str]) -> int:
    return run_unlearn(parsed(add_unlearn_arguments, argv))


def test_a_resumed_unlearning_run_equals_an_uninterrupted_one(memorised_model, tmp_path, monkeypatch):
    assert run_cli(unlearn_argv(memorised_model, tmp_path / "whole")) == 0
    assert not resume_folder(tmp_path / "whole").exists()
    out = tmp_path / "resumed"
    interrupt_at(monkeypatch, 11)  # 5 batches an epoch: the state of step 8 is in the second epoch
    with pytest.raises(Interrupted):
        run_cli(unlearn_argv(memorised_model, out))
    assert not out.exists()
    saved = json.loads((resume_folder(out) / "resume.json").read_text())
    assert (saved["step"], saved["epoch"], saved["batch_in_epoch"]) == (8, 1, 3)
    assert run_cli(unlearn_argv(memorised_model, out)) == 0
    assert same_weights(load(out)[0], load(tmp_path / "whole")[0])
    assert json.loads((out / "control.json").read_text())["steps"] == 12
    assert not resume_folder(out).exists()


def test_a_changed_configuration_is_refused_with_the_differences(memorised_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    interrupt_at(monkeypatch, 6)
    with pytest.raises(Interrupted):
        run_cli(unlearn_argv(memorised_model, out))
    capsys.readouterr()
    assert run_cli([*unlearn_argv(memorised_model, out), "--lr", "1e-4", "--beta", "0.2"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "resume state (step 4)" in errors[0]
    error = errors[0]
    assert "hyperparameters.lr: 0.001 → 0.0001" in error and "hyperparameters.beta: 0.1 → 0.2" in error
    assert str(resume_folder(out)) in error and not out.exists()
    assert run_cli(unlearn_argv(memorised_model, out)) == 0  # the original command still resumes


def test_a_resumed_lora_finetune_equals_an_uninterrupted_one(memorised_model, tmp_path, monkeypatch):
    settings = {"lora": 4, "max_steps": 6, "batch_size": 8, "lr": 1e-3, "save_every": 2}
    finetune(str(memorised_model), retain_rows(), tmp_path / "whole", **settings)
    interrupt_at(monkeypatch, 6)
    with pytest.raises(Interrupted):
        finetune(str(memorised_model), retain_rows(), tmp_path / "resumed", **settings)
    state = resume_folder(tmp_path / "resumed") / "state.pt"
    assert json.loads(state.with_name("resume.json").read_text())["step"] == 4
    finetune(str(memorised_model), retain_rows(), tmp_path / "resumed", **settings)
    assert same_weights(load(tmp_path / "resumed")[0], load(tmp_path / "whole")[0])


def test_early_stopping_resumes_with_its_measurements_and_kept_weights(memorised_model, tmp_path, monkeypatch):
    target = {name: value.clone() for name, value in load(memorised_model)[0].state_dict().items()}

    def closeness(model, tokenizer):  # 1 at the target, falling as GA moves the weights
        moved = sum((value.float() - target[name]).square().sum().item() for name, value in model.state_dict().items())
        return 1 / (1 + moved / 6)  # below τ = 0.5 once moved > 6: after step 5 of GA at lr 1e-3

    settings = {"method": "ga", "control": "early-stop", "tau": 0.5, "eval_every": 1, "metric_fn": closeness,
                "max_steps": 12, "lr": 1e-3, "save_every": 2}
    whole = unlearn(str(memorised_model), forget=forget_rows(), retain=retain_rows(), out=tmp_path / "whole", **settings)
    assert 3 < whole["kept_step"] < 12
    interrupt_at(monkeypatch, whole["kept_step"])
    with pytest.raises(Interrupted):
        unlearn(str(memorised_model), forget=forget_rows(), retain=retain_rows(), out=tmp_path / "resumed", **settings)
    resumed = unlearn(str(memorised_model), forget=forget_rows(), retain=retain_rows(), out=tmp_path / "resumed", **settings)
    assert (resumed["trace"], resumed["kept_step"]) == (whole["trace"], whole["kept_step"])
    assert same_weights(load(tmp_path / "resumed")[0], load(tmp_path / "whole")[0])


def test_save_every_must_be_positive(memorised_model, tmp_path):
    with pytest.raises(UnlearnError, match="--save-every must be at least 1"):
        finetune(str(memorised_model), retain_rows(), tmp_path / "out", max_steps=2, save_every=0)
