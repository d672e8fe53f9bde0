"""Bad input is one of our errors (an UnlearnBenchError): `unlearn-bench` reports it as one line and exits 2.

The command-line cases run each command up to its check (no evaluation, no training); the unit cases
reach every other converted check directly.
"""

from __future__ import annotations

import io
import json
import logging
import random
from types import SimpleNamespace

import pytest

from harness_ext.cli import main
from harness_ext.demo import synth
from harness_ext.demo.steps import exclusive
from harness_ext.io import OutputError
from harness_ext.robustness.attacks import AttackNameError, get_attacks
from harness_ext.unlearning.commands import add_unlearn_arguments, run_unlearn
from tests.unlearning_fixtures import parsed
from unlearn_tasks import attacks, chat
from unlearn_tasks.datasource import DataError
from unlearn_tasks.errors import MetadataError
from unlearn_tasks.fluency.perplexity import reference_perplexity
from unlearn_tasks.fluency.task import FluencyTask
from unlearn_tasks.muse.aggregations import retrain_auc
from unlearn_tasks.muse.task import MuseTask
from unlearn_tasks.scoring import RequestBuilder, ScoredSequence, TokenDetailsMissing
from unlearn_tasks.tokenization import LmEvalTokenization, _token_ends


def assert_one_error_line(capsys, code: int, command: str, *words: str) -> None:
    """Exit status 2, no traceback, and one error line (progress bars of loading a model may come before it)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2 and "Traceback" not in err, err[-2000:]
    assert len(errors) == 1 and errors[0].startswith(f"unlearn-bench {command}: error: "), errors
    for word in words:
        assert word in errors[0]


# ---- the command line ---------------------------------------------------------------------------------

@pytest.fixture
def lm_eval_logs_aside():
    """lm-eval's log handler keeps the stderr of the test that first set it up (closed by now, so every record
    would add a "Logging error" traceback); here its records go to a buffer, and stderr holds our output."""
    import lm_eval.utils

    lm_eval.utils.setup_logging()
    handlers = [handler for handler in logging.getLogger("lm_eval").handlers
                if isinstance(handler, logging.StreamHandler)]
    streams = [handler.stream for handler in handlers]
    for handler in handlers:  # not setStream: it flushes the old stream, which may be closed
        handler.stream = io.StringIO()
    yield
    for handler, stream in zip(handlers, streams):
        handler.stream = stream


@pytest.mark.parametrize(("metadata", "words"), [
    ({"attack": "gcg"}, ["metadata attack='gcg' is not an input attack", "known: noise, jailbreak, paraphrase"]),
    ({"attack": "noise", "attack_rate": 2}, ["attack_rate must be a number in [0, 1], got 2"]),
    ({"convention": "open_unlearning"}, ["unknown metadata convention 'open_unlearning'", "open-unlearning"]),
    ({"date_string": "2025-04-10"}, ["date_string='2025-04-10' must look like '10 Apr 2025'"]),
])
@pytest.mark.usefixtures("lm_eval_logs_aside")
def test_bad_task_metadata_of_eval(memorised_model, tmp_path, capsys, metadata, words):
    out = tmp_path / "out"
    code = main(["eval", "--model", "hf", "--model_args", f"pretrained={memorised_model}",
                 "--tasks", "unlearn_tofu_forget01", "--limit", "1", "--output_path", str(out),
                 "--metadata", json.dumps(metadata)])
    assert_one_error_line(capsys, code, "eval", *words)
    assert not out.exists() or not list(out.rglob("results_*.json"))


def test_unknown_robustness_attack(tmp_path, capsys):
    models = []
    for name in "abcd":  # folders with a config.json are checkpoints to the family; none is loaded
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        models.append(str(tmp_path / name))
    code = main(["robustness", *models, "--attacks", "noise,gcg", "--out", str(tmp_path / "study")])
    assert_one_error_line(capsys, code, "robustness", "unknown attack(s) gcg; known: noise, jailbreak")
    assert not (tmp_path / "study").exists()


def test_demo_data_folder_without_tofu(tmp_path, capsys):
    code = main(["demo", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "demo")])
    assert_one_error_line(capsys, code, "demo", "no tofu/ folder in it")


@pytest.mark.usefixtures("lm_eval_logs_aside")
def test_bad_calibration_metadata_of_unlearn(memorised_model, tmp_path, capsys):
    """Any error of ours, not only UnlearnError and DataError, is one line from run_unlearn itself too."""
    args = parsed(add_unlearn_arguments, [
        "--model", str(memorised_model), "--method", "ga", "--forget", "tofu:forget01", "--retain", "tofu:retain90",
        "--out", str(tmp_path / "out"), "--max-steps", "1", "--control", "early-stop", "--tau", "0.9",
        "--calibrate-metadata", json.dumps({"convention": "Open-Unlearning"}),
    ])
    assert_one_error_line(capsys, run_unlearn(args), "unlearn", "unknown metadata convention 'Open-Unlearning'")
    assert not (tmp_path / "out").exists()


# ---- each check, directly ------------------------------------------------------------------------------

@pytest.mark.parametrize("metadata", [
    {"attack_rate": 0.1}, {"attack": "quantize4"}, {"attack": "noise", "attack_template": "role_play"},
    {"attack": "noise", "attack_seed": -1}, {"attack": "jailbreak", "attack_template": "nope"},
])
def test_input_attack_metadata(metadata):
    with pytest.raises(MetadataError, match="metadata attack"):
        attacks.from_metadata(metadata)


def test_chat_date_string():
    with pytest.raises(MetadataError, match="date_string"):
        chat.parse_date(None)


@pytest.mark.parametrize("given", ["about half", 1.5, 0])
def test_muse_retrained_auc(given):
    with pytest.raises(MetadataError, match=f"privleak_auc_retrain must be an AUC in \\(0, 1\\].*got {given!r}"):
        retrain_auc({"privleak_auc_retrain": given}, "unlearn_muse_news_privleak", [], {})


def test_muse_refuses_a_chat_template_and_needs_the_tokenizer():
    task = SimpleNamespace(config=SimpleNamespace(task="unlearn_muse_news_verbmem"), metadata={})
    with pytest.raises(MetadataError, match="drop --apply_chat_template"):
        MuseTask.construct_requests(task, {}, "", apply_chat_template=True)
    with pytest.raises(MetadataError, match="pass pretrained=<path or hub id>"):
        MuseTask.tokenizer.func(task)


def test_fluency_needs_the_tokenizer_and_a_loadable_reference(tmp_path):
    task = SimpleNamespace(config=SimpleNamespace(task="unlearn_fluency_forget01"), builder=RequestBuilder(False, {}))
    with pytest.raises(MetadataError, match="unlearn_fluency_forget01 counts generated tokens"):
        FluencyTask._tokenizer.func(task)
    with pytest.raises(MetadataError, match="needs metadata fluency_ref"):
        reference_perplexity([], None)
    with pytest.raises(MetadataError, match="cannot be loaded as a causal LM checkpoint"):
        reference_perplexity([], str(tmp_path))


def test_the_plain_scoring_path_needs_a_fast_tokenizer():
    with pytest.raises(MetadataError, match="needs the tokenizer"):
        LmEvalTokenization.load()
    with pytest.raises(MetadataError, match="needs a fast tokenizer"):
        _token_ends(SimpleNamespace(is_fast=False), "text", 1)


def test_token_details_from_a_model_without_them():
    builder = RequestBuilder(True, {})
    _, plan = builder.build({}, [ScoredSequence("answer", "Question: q\nAnswer:", " a")], {})
    with pytest.raises(TokenDetailsMissing, match="metadata token_details is set"):
        builder.read(plan, [(-1.0, True)])


@pytest.mark.parametrize(("names", "message"), [
    (["noise", "gcg"], "unknown attack"), (["noise", "noise"], "give each attack once"), ([], "at least one"),
])
def test_robustness_attack_names(names, message):
    with pytest.raises(AttackNameError, match=message):
        get_attacks(names)


def test_synthetic_author_counts(monkeypatch):
    with pytest.raises(synth.SynthError, match="no retain authors"):
        synth.forget_author_counts(1)
    with pytest.raises(synth.SynthError, match="holdout_authors must be at least 1"):
        synth.holdout_author_counts(40, 0)
    monkeypatch.setattr(synth, "FIRST_NAMES", ("Ada",))
    monkeypatch.setattr(synth, "LAST_NAMES", ("Lee", "Ray"))
    with pytest.raises(synth.SynthError, match="cannot draw 3 more distinct author names"):
        synth.draw_names(random.Random(0), 3, [])


def test_a_demo_folder_another_demo_writes_into(tmp_path):
    with exclusive(tmp_path):
        with pytest.raises(OutputError, match="another demo is writing into"):
            with exclusive(tmp_path):
                pass


def test_synth_word_tables_are_data():
    assert issubclass(synth.WordTableError, DataError)


@pytest.mark.parametrize("value", ["long", "-5", 0.5])
def test_a_bad_max_length_for_muse_scoring_is_a_metadata_error(value):
    from unlearn_tasks.errors import MetadataError
    from unlearn_tasks.muse.context import model_max_length

    with pytest.raises(MetadataError, match="max_length must be a positive number of tokens"):
        model_max_length({"max_length": value}, tokenizer=None)
