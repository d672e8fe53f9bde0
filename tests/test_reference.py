"""Retain references carry the settings they were computed under; a run under other settings refuses them.

Building (`unlearn-bench reference`): settings and provenance come from the results file beside the
samples; a run folder with several models needs --model-name. Loading: our v2 files are compared field
by field with the run, v1 files are refused, open-unlearning logs are read only under its convention.
"""

from __future__ import annotations

import json

import lm_eval
import pytest
from lm_eval.api.model import LM

from harness_ext.cli import main
from harness_ext.evaluation import task_manager
from harness_ext.reference import build_reference
from tests.conftest import TOFU_DIR, requires
from tests.reference_fixtures import DEFAULT_SETTINGS, forget_samples, write_samples
from unlearn_tasks.tofu.reference import (
    FORMAT,
    RetainReferenceError,
    chat_template_setting,
    load_mia_reference,
    load_reference,
)

FORGET = "unlearn_tofu_forget01"
MIA = "unlearn_tofu_mia_forget01"
QUESTIONS = [f"q{i}" for i in range(3)]
TEMPLATE = chat_template_setting(lambda messages: "".join(f"<{turn['role']}>{turn['content']}" for turn in messages))


def reference_file(path, settings: dict, task: str = FORGET, count: int = 3):
    entry = {"settings": settings, "provenance": {}, "questions": [f"q{i}" for i in range(count)],
             "truth_ratio": [0.5 + i for i in range(count)]}
    path.write_text(json.dumps({"format": FORMAT, "tasks": {task: entry}}))
    return path


# ---- building --------------------------------------------------------------------------------------

def test_the_reference_records_the_runs_settings_and_provenance(tmp_path):
    prompt_settings = {"chat_template": TEMPLATE, "system_instruction": "Be brief."}
    metadata = {"convention": "open-unlearning", "attack": "noise", "attack_rate": 0.1, "prompt_settings": prompt_settings}
    write_samples(tmp_path / "run" / "ckpt__retain", FORGET, forget_samples(3), metadata=metadata, version=2)
    entry = build_reference(tmp_path / "run", tmp_path / "ref.json")["tasks"][FORGET]
    assert entry["settings"] == {"convention": "open-unlearning", "task_version": 2, **prompt_settings}
    assert entry["provenance"] == {"model": "ckpt/retain", "dtype": "torch.float32", "limit": None,
                                   "attack": {"attack": "noise", "attack_rate": 0.1},
                                   "results_file": "results_2026-01-01T00-00-00.000000.json"}
    assert (entry["questions"], entry["truth_ratio"]) == (QUESTIONS, [0.5, 1.5, 2.5])
    assert json.loads((tmp_path / "ref.json").read_text())["format"] == FORMAT


def test_the_chat_template_setting_is_the_rendering_of_a_fixed_conversation():
    assert chat_template_setting(None) is None
    assert TEMPLATE.startswith("sha256:") and len(TEMPLATE) == len("sha256:") + 64
    assert chat_template_setting(lambda messages: "".join(turn["content"] for turn in messages)) != TEMPLATE


def test_samples_without_their_results_file_are_refused(tmp_path):
    samples = write_samples(tmp_path / "run" / "model", FORGET, forget_samples(3))
    (samples.parent / "results_2026-01-01T00-00-00.000000.json").unlink()
    with pytest.raises(RetainReferenceError, match="results file results_2026-01-01T00-00-00.000000.json is missing"):
        build_reference(tmp_path / "run", tmp_path / "ref.json")
    assert not (tmp_path / "ref.json").exists()


def test_a_run_folder_of_two_models_needs_the_model_name(tmp_path, capsys):
    run = tmp_path / "run"
    write_samples(run / "ckpt__target", FORGET, forget_samples(3), model="ckpt/target")
    write_samples(run / "ckpt__retain", FORGET, [{**sample, "forget_quality": {**sample["forget_quality"], "truth_ratio": 9.0}}
                                                for sample in forget_samples(3)], model="ckpt/retain")
    with pytest.raises(RetainReferenceError, match=r"several models \(ckpt__retain, ckpt__target\).*--model-name"):
        build_reference(run, tmp_path / "ref.json")
    entry = build_reference(run, tmp_path / "ref.json", model_name="ckpt/retain")["tasks"][FORGET]
    assert entry["truth_ratio"] == [9.0] * 3 and entry["provenance"]["model"] == "ckpt/retain"
    assert build_reference(run, tmp_path / "ref.json", model_name="ckpt__target")["tasks"][FORGET]["truth_ratio"] == [0.5, 1.5, 2.5]
    with pytest.raises(RetainReferenceError, match="matches 0 model folders.*ckpt__retain, ckpt__target"):
        build_reference(run, tmp_path / "ref.json", model_name="ckpt/other")
    assert main(["reference", str(run), "--out", str(tmp_path / "cli.json"), "--model-name", "ckpt/retain"]) == 0
    assert "unlearn_tofu_forget01: 3 truth ratios (ckpt/retain, convention default)" in capsys.readouterr().out
    assert main(["reference", str(run), "--out", str(tmp_path / "cli2.json")]) == 2
    assert "say which is the retain model with --model-name" in capsys.readouterr().err


# ---- loading: our files ----------------------------------------------------------------------------

def test_a_reference_under_the_runs_settings_is_read(tmp_path):
    path = reference_file(tmp_path / "ref.json", DEFAULT_SETTINGS)
    reference = load_reference(path, FORGET, QUESTIONS, {"convention": "default", "task_version": 1})
    assert reference.values == [0.5, 1.5, 2.5]
    reference.check({"chat_template": None, "system_instruction": None})


@pytest.mark.parametrize(("field", "run_value"), [("convention", "open-unlearning"), ("task_version", 2)])
def test_another_convention_or_task_version_is_refused_naming_both_values(tmp_path, field, run_value):
    path = reference_file(tmp_path / "ref.json", DEFAULT_SETTINGS)
    run = {"convention": "default", "task_version": 1, field: run_value}
    with pytest.raises(RetainReferenceError, match=rf"{field}: reference {DEFAULT_SETTINGS[field]!r}, this run {run_value!r}"):
        load_reference(path, FORGET, QUESTIONS, run)


def test_every_differing_setting_is_named_in_one_message(tmp_path):
    path = reference_file(tmp_path / "ref.json", DEFAULT_SETTINGS)
    with pytest.raises(RetainReferenceError) as refused:
        load_reference(path, FORGET, QUESTIONS, {"convention": "open-unlearning", "task_version": 2})
    message = str(refused.value)
    assert "convention: reference 'default', this run 'open-unlearning'; task_version: reference 1, this run 2" in message
    assert "`unlearn-bench reference" in message


def test_another_chat_template_or_system_instruction_is_refused(tmp_path):
    path = reference_file(tmp_path / "ref.json", DEFAULT_SETTINGS)
    reference = load_reference(path, FORGET, QUESTIONS, {"convention": "default", "task_version": 1})
    with pytest.raises(RetainReferenceError, match=f"chat_template: reference None, this run '{TEMPLATE}'"):
        reference.check({"chat_template": TEMPLATE, "system_instruction": None})
    with pytest.raises(RetainReferenceError, match="system_instruction: reference None, this run 'Be brief.'"):
        reference.check({"chat_template": None, "system_instruction": "Be brief."})


def test_a_version_1_file_is_refused_with_how_to_rebuild_it(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"format": "unlearn-bench/retain-reference/v1",
                                "tasks": {FORGET: {"questions": QUESTIONS, "truth_ratio": [1.0, 1.0, 1.0]}}}))
    with pytest.raises(RetainReferenceError, match=r"v1 file, which does not record the settings.*rebuild it with "
                                                   r"`unlearn-bench reference RUN --out FILE`"):
        load_reference(path, FORGET, QUESTIONS, {"convention": "default", "task_version": 1})


# ---- loading: open-unlearning's retain logs --------------------------------------------------------

def test_open_unlearning_logs_are_read_only_under_its_convention(tmp_path):
    truth_ratios = tmp_path / "retain_log.json"
    truth_ratios.write_text(json.dumps({"forget_truth_ratio": {"value_by_index": {str(i): {"score": 0.5 + i} for i in range(3)}}}))
    aucs = tmp_path / "retain_mia.json"
    aucs.write_text(json.dumps({"mia_min_k": {"agg_value": 0.25}}))
    open_unlearning = {"convention": "open-unlearning", "task_version": 1}
    assert load_reference(truth_ratios, FORGET, QUESTIONS, open_unlearning).values == [0.5, 1.5, 2.5]
    assert load_mia_reference(aucs, MIA, 40, 40, open_unlearning).values == {"auc_mink": 0.25}
    default = {"convention": "default", "task_version": 1}
    with pytest.raises(RetainReferenceError, match="open-unlearning retain log.*runs under convention 'default'"):
        load_reference(truth_ratios, FORGET, QUESTIONS, default)
    with pytest.raises(RetainReferenceError, match="open-unlearning retain log.*runs under convention 'default'"):
        load_mia_reference(aucs, MIA, 40, 40, default)


# ---- through a task --------------------------------------------------------------------------------

class NoModel(LM):
    """Fails if asked anything: the refusals below happen before any request runs."""

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise AssertionError("the reference should have been refused before scoring")

    loglikelihood_rolling = generate_until = loglikelihood


def forget01_rows() -> list[dict]:
    return [json.loads(line) for line in (TOFU_DIR / "forget01_perturbed.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(TOFU_DIR.parent))


@requires(TOFU_DIR, "TOFU data")
def test_the_forget_task_reads_a_reference_made_under_its_settings(local_data, tmp_path):
    from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    rows = forget01_rows()
    model, tokenizer = build_tiny_model(tofu_texts(rows), vocab_size=256)
    entry = {"settings": DEFAULT_SETTINGS, "questions": [row["question"] for row in rows], "truth_ratio": [1.0] * len(rows)}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"format": FORMAT, "tasks": {FORGET: entry}}))
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    results = evaluate(lm, [FORGET], limit=2, metadata={"retain_ref": str(path)}, bootstrap_iters=0)["results"][FORGET]
    assert 0.0 < results["forget_quality,none"] <= 1.0


@requires(TOFU_DIR, "TOFU data")
def test_the_forget_task_refuses_a_reference_made_with_a_chat_template(local_data, tmp_path):
    questions = [row["question"] for row in forget01_rows()]
    entry = {"settings": {**DEFAULT_SETTINGS, "chat_template": TEMPLATE},
             "questions": questions, "truth_ratio": [1.0] * len(questions)}
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"format": FORMAT, "tasks": {FORGET: entry}}))
    with pytest.raises(RetainReferenceError, match=r"chat_template: reference 'sha256:[0-9a-f]{64}', this run None"):
        lm_eval.simple_evaluate(model=NoModel(), tasks=[FORGET], task_manager=task_manager({"retain_ref": str(path)}),
                                limit=2, bootstrap_iters=0)
    entry["settings"] = {**DEFAULT_SETTINGS, "convention": "open-unlearning"}
    path.write_text(json.dumps({"format": FORMAT, "tasks": {FORGET: entry}}))
    with pytest.raises(RetainReferenceError, match="convention: reference 'open-unlearning', this run 'default'"):
        lm_eval.simple_evaluate(model=NoModel(), tasks=[FORGET], task_manager=task_manager({"retain_ref": str(path)}),
                                limit=2, bootstrap_iters=0)


@requires(TOFU_DIR, "TOFU data")
def test_a_reference_made_with_a_chat_template_is_read_with_that_template_only(local_data, tmp_path):
    """End to end on a tiny model whose tokenizer has a chat template: the MIA task records what it rendered
    with, `unlearn-bench reference` keeps it, and a run with another template or none refuses it."""
    from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM
    from tests.reference_fixtures import evaluate_into

    rows = [json.loads(line) for name in ("forget01", "holdout01")
            for line in (TOFU_DIR / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    model, tokenizer = build_tiny_model(tofu_texts(rows), out_dir=tmp_path / "ckpt", vocab_size=512)
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
                               "{% if add_generation_prompt %}<assistant>{% endif %}")
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=16, device="cpu")
    metadata = {"tokenizer": str(tmp_path / "ckpt")}
    evaluate_into(tmp_path / "run", lm, tmp_path / "ckpt", [MIA], metadata=metadata, apply_chat_template=True)
    settings = build_reference(tmp_path / "run", tmp_path / "ref.json")["tasks"][MIA]["settings"]
    assert settings["chat_template"].startswith("sha256:") and settings["system_instruction"] is None
    metadata["retain_ref"] = str(tmp_path / "ref.json")
    same = evaluate(lm, [MIA], metadata=metadata, apply_chat_template=True, bootstrap_iters=0)["results"][MIA]
    assert same["privleak,none"] == pytest.approx(0.0, abs=1e-9)  # the retain model against itself
    with pytest.raises(RetainReferenceError, match=r"chat_template: reference 'sha256:[0-9a-f]{64}', this run None"):
        evaluate(lm, [MIA], metadata=metadata, bootstrap_iters=0)
    tokenizer.chat_template = tokenizer.chat_template.replace("<assistant>", "<bot>")
    with pytest.raises(RetainReferenceError, match=r"chat_template: reference 'sha256:[0-9a-f]{64}', this run 'sha256:"):
        evaluate(lm, [MIA], metadata=metadata, apply_chat_template=True, bootstrap_iters=0)


@pytest.mark.parametrize(("edit", "says"), [
    (lambda entry: entry.pop("questions"), "KeyError"),
    (lambda entry: entry.update(truth_ratio=["high", 1, 2]), "could not convert"),
    (lambda entry: entry.update(truth_ratio=[0.5, -1.0, 2.0]), "finite number ≥ 0, got -1.0"),
    (lambda entry: entry.update(truth_ratio=[0.5]), "1 truth ratios for 3 documents"),
    (lambda entry: entry.update(settings=["default"]), "AttributeError"),
])
def test_a_hand_broken_reference_is_one_error_naming_the_file(tmp_path, edit, says):
    path = reference_file(tmp_path / "ref.json", DEFAULT_SETTINGS)
    data = json.loads(path.read_text())
    edit(data["tasks"][FORGET])
    path.write_text(json.dumps(data))
    with pytest.raises(RetainReferenceError, match=f"retain_ref {path} is malformed for {FORGET}.*{says}"):
        load_reference(path, FORGET, QUESTIONS, {"convention": "default", "task_version": 1})


def test_a_hand_broken_mia_reference_is_one_error(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"format": FORMAT, "tasks": {MIA: {"settings": DEFAULT_SETTINGS, "members": 3,
                                                                  "nonmembers": 3, "auc_mink": "half"}}}))
    with pytest.raises(RetainReferenceError, match="malformed.*could not convert"):
        load_mia_reference(path, MIA, 3, 3, {"convention": "default", "task_version": 1})
