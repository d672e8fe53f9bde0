"""The demo's resumable steps: made once, made again when an ingredient changes (settings, our code, the data
it reads, the base model's content), skipped when nothing did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness_ext.demo import steps
from harness_ext.demo.phases import base_model, data_source
from harness_ext.demo.presets import TOFU_TASKS, demo_config
from harness_ext.demo.run import demo_environment
from harness_ext.demo.scoring import evaluation_settings
from harness_ext.demo.steps import Ledger, Step, data_digest, forget_stamps


def write_text(text: str):
    def build(out: Path) -> None:
        out.write_text(text)
    return build


def quiet_ledger() -> Ledger:
    return Ledger(log=lambda line: None)


def test_a_step_is_made_once_and_again_when_its_configuration_changes(tmp_path):
    ledger = quiet_ledger()
    step = Step("phase", "file", tmp_path / "out.txt", {"lr": 1})
    ledger.ensure(step, write_text("first"))
    ledger.ensure(step, write_text("second"))
    assert step.output.read_text() == "first"
    assert [entry.made_now for entry in ledger.times] == [True, False]

    changed = Step("phase", "file", tmp_path / "out.txt", {"lr": 2})
    ledger.ensure(changed, write_text("third"))
    assert changed.output.read_text() == "third"
    stamp = json.loads(changed.stamp.read_text())
    assert stamp["digest"] == changed.digest
    assert stamp["ingredients"] == {"lr": 2, "code": changed.code}


def test_a_step_is_made_again_when_the_code_changes(tmp_path, monkeypatch):
    ledger = quiet_ledger()
    ledger.ensure(Step("phase", "file", tmp_path / "out.txt", {"lr": 1}), write_text("old code"))
    monkeypatch.setattr(steps, "code_fingerprint", lambda: "edited code")
    edited = Step("phase", "file", tmp_path / "out.txt", {"lr": 1})
    assert edited.code == "edited code"
    ledger.ensure(edited, write_text("new code"))
    assert edited.output.read_text() == "new code"
    assert [entry.made_now for entry in ledger.times] == [True, True]


def test_an_interrupted_step_is_made_again(tmp_path):
    ledger = quiet_ledger()
    step = Step("phase", "file", tmp_path / "out.txt", {"lr": 1})
    ledger.ensure(step, write_text("old"))
    changed = Step("phase", "file", tmp_path / "out.txt", {"lr": 2})

    def interrupted(out: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ledger.ensure(changed, interrupted)
    assert not changed.stamp.exists() and step.valid_stamp() is None  # the old output is no longer trusted
    ledger.ensure(changed, write_text("new"))
    assert changed.output.read_text() == "new"


def test_fresh_forgets_every_stamp(tmp_path):
    ledger = quiet_ledger()
    made = [Step("phase", name, tmp_path / sub / name, {}) for sub, name in (("a", "x"), ("b", "y"))]
    for step in made:
        step.output.parent.mkdir()
        ledger.ensure(step, write_text(step.name))
    assert forget_stamps(tmp_path) == 2
    assert all(step.valid_stamp() is None for step in made)


# ---- the phases' ingredients ----------------------------------------------------------------------

def first_phases(config, work: Path) -> list[str]:
    """Run the data and base-model phases; the names of the steps made now (not reused)."""
    ledger = quiet_ledger()
    with demo_environment(config, work):
        base_model(ledger, config, work, data_source(ledger, config, work))
    return [entry.name.split(":")[0] for entry in ledger.times if entry.made_now]


def test_the_first_phases_are_redone_after_a_data_or_code_change_and_skipped_otherwise(tmp_path, monkeypatch):
    config = demo_config(quick=True, authors=4)
    work = tmp_path / "work"
    assert first_phases(config, work) == ["data", "base model"]
    assert first_phases(config, work) == []

    full = work / "data" / "tofu" / "full.jsonl"
    full.write_text(full.read_text(encoding="utf-8").replace('?"', '!"', 1), encoding="utf-8")  # one byte
    assert first_phases(config, work) == ["base model"]  # it read the edited data; the data step did not
    assert first_phases(config, work) == []

    monkeypatch.setattr(steps, "code_fingerprint", lambda: "edited code")
    assert first_phases(config, work) == ["data", "base model"]
    assert '?"' in full.read_text(encoding="utf-8")  # the synthetic data made again by the edited code


def test_evaluations_key_on_the_data_of_their_tasks_and_training_on_tofu_only(tmp_path, monkeypatch):
    for family, name in (("tofu", "full.jsonl"), ("probes", "piqa.jsonl")):
        (tmp_path / family).mkdir()
        (tmp_path / family / name).write_text('{"a": 1}\n')
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    config = demo_config(model="m", data=str(tmp_path))
    assert "unlearn_probes" in config.tasks
    before = evaluation_settings(config, list(config.tasks))["data"], data_digest(list(TOFU_TASKS))

    (tmp_path / "probes" / "piqa.jsonl").write_text('{"a": 2}\n')
    after = evaluation_settings(config, list(config.tasks))["data"], data_digest(list(TOFU_TASKS))
    assert after[0] != before[0]  # the runs that score the probes are redone
    assert after[1] == before[1]  # fine-tuning and unlearning read TOFU only


def test_a_real_base_model_is_known_by_its_content_not_its_path(tmp_path):
    from harness_ext.demo.tiny_model import build_tiny_model

    folder = tmp_path / "model"
    texts = ["Question: who?\nAnswer: me"]
    build_tiny_model(texts, folder, hidden_size=32, seed=0)
    config = demo_config(model=str(folder), data="synthetic")
    data = steps.Source("synthetic", "data digest")
    first = base_model(quiet_ledger(), config, tmp_path, data)
    assert base_model(quiet_ledger(), config, tmp_path, data) == first

    build_tiny_model(texts, folder, hidden_size=32, seed=1)  # other weights at the same path
    assert base_model(quiet_ledger(), config, tmp_path, data).digest != first.digest
