"""The finetune / unlearn commands: bad input fails once and clearly, writes are atomic, --overwrite rules."""

from __future__ import annotations

import json
import re

import pytest
from transformers import PreTrainedTokenizerBase

from harness_ext.evaluation import evaluate
from harness_ext.models import UnlearnHFLM
from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from harness_ext.unlearning.commands import add_finetune_arguments, add_unlearn_arguments, run_finetune, run_unlearn
from tests.unlearning_fixtures import answer_nll, forget_rows, load, parsed, retain_rows


def unlearn_args(model, out, *extra: str):
    return parsed(add_unlearn_arguments, [
        "--model", str(model), "--method", "ga", "--forget", "tofu:forget01", "--retain", "tofu:retain90",
        "--out", str(out), "--max-steps", "2", "--lr", "1e-3", *extra,
    ])


def replaced(args, **changes):
    for name, value in changes.items():
        setattr(args, name, value)
    return args


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": "gradient-ascent"}, r"unknown unlearning method 'gradient-ascent'.*known: ga, graddiff, idkpo, kl, npo, rmu, simnpo"),
        ({"forget": "tofu:forget11"}, r"unknown TOFU config 'forget11' in 'tofu:forget11'; known: full, forget01"),
        ({"control": "mix", "tau": 0.0}, r"--tau must be in \(0, 1\], got 0.0"),
        ({"control": "early-stop", "tau": 1.5}, r"--tau must be in \(0, 1\], got 1.5"),
        ({"control": "mix"}, r"--control mix needs --tau"),
        ({"control": "mixing", "tau": 0.9}, r"unknown control 'mixing' \(did you mean 'mix'\?\)"),
        ({"control": "ga-bound"}, r"--control ga-bound needs --ga-bound"),
        ({"method": "rmu", "layer": 9}, r"--layer 9 is outside the model's decoder layers 0..1"),
    ],
)
def test_bad_input_gives_one_clear_error_and_writes_nothing(memorised_model, tmp_path, capsys, changes, message):
    out = tmp_path / "out"
    assert run_unlearn(replaced(unlearn_args(memorised_model, out), **changes)) == 2
    stderr = capsys.readouterr().err  # may also hold progress bars of loading the model
    error = stderr.strip().splitlines()[-1]
    assert stderr.count("error") == 1 and error.startswith("unlearn-bench unlearn: error: ")
    assert re.search(message, error)
    assert list(tmp_path.iterdir()) == []


def test_non_empty_out_is_replaced_only_with_overwrite(memorised_model, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("earlier run")
    assert run_unlearn(unlearn_args(memorised_model, out)) == 2
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == ["keep.txt"]
    assert run_unlearn(unlearn_args(memorised_model, out, "--overwrite")) == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_write_leaves_no_half_checkpoint(memorised_model, tmp_path, monkeypatch, existing):
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "keep.txt").write_text("earlier run")

    def interrupted(tokenizer, folder, *args, **kwargs):  # the weights are written by now
        assert (folder / "model.safetensors").exists()
        raise KeyboardInterrupt

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_unlearn(unlearn_args(memorised_model, out, *(["--overwrite"] if existing else [])))
    assert sorted(path.name for path in tmp_path.iterdir()) == (["out"] if existing else [])
    if existing:
        assert [path.name for path in out.iterdir()] == ["keep.txt"]


def test_finetune_makes_a_target_that_plain_lm_eval_scores(tofu_data_dir, tmp_path):
    rows = forget_rows() + retain_rows()
    base = tmp_path / "base"
    build_tiny_model(tofu_texts(rows), out_dir=base, hidden_size=64, layers=2)
    out = tmp_path / "target"
    args = parsed(add_finetune_arguments, ["--model", str(base), "--data", "tofu:forget01", "--out", str(out),
                                           "--lr", "3e-3", "--epochs", "4", "--batch-size", "8"])
    assert run_finetune(args) == 0
    before, tokenizer = load(base)
    after, _ = load(out)
    assert answer_nll(after, tokenizer, forget_rows()) < answer_nll(before, tokenizer, forget_rows()) - 1.0
    record = json.loads((out / "control.json").read_text())
    assert (record["method"], record["steps"], record["data"]) == ("finetune", 20, {"train": "tofu:forget01"})
    results = evaluate(UnlearnHFLM(pretrained=str(out), device="cpu", batch_size=4), ["unlearn_tofu_utility"], limit=2)
    assert "es_retain,none" in results["results"]["unlearn_tofu_utility"]


def test_lora_unlearning_saves_an_adapter_that_lm_eval_loads_with_peft(memorised_model, tmp_path):
    out = tmp_path / "adapter"
    assert run_unlearn(unlearn_args(memorised_model, out, "--lora", "4", "--method", "npo", "--lr", "1e-2")) == 0
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    target, tokenizer = load(memorised_model)
    lm = UnlearnHFLM(pretrained=str(memorised_model), peft=str(out), device="cpu", batch_size=4)
    assert answer_nll(lm.model, tokenizer, forget_rows()) > answer_nll(target, tokenizer, forget_rows())
    assert json.loads((out / "control.json").read_text())["lora"] == 4
