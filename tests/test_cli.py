"""`unlearn-bench` errors: our own error classes are one line (exit 2), anything else keeps its traceback."""

from __future__ import annotations

import pytest

from harness_ext import evaluation
from harness_ext.cli import main
from harness_ext.demo.synth import SynthError, WordTableError
from harness_ext.evaluation import MissingEngineError
from harness_ext.io import OutputError
from harness_ext.leaderboard import LeaderboardError
from harness_ext.mixing import MixingError
from harness_ext.models.probe import ProbeError
from harness_ext.robustness.attacks import AttackNameError
from harness_ext.robustness.family import FamilyError
from harness_ext.unlearning.config import UnlearnError
from unlearn_tasks.datasource import DataError
from unlearn_tasks.errors import MetadataError, UnlearnBenchError
from unlearn_tasks.request_cache import RequestCacheError
from unlearn_tasks.scoring import TokenDetailsMissing
from unlearn_tasks.tofu.reference import RetainReferenceError


@pytest.mark.parametrize("error", [DataError, RetainReferenceError, OutputError, UnlearnError, MixingError,
                                   FamilyError, LeaderboardError, MissingEngineError, ProbeError, MetadataError,
                                   TokenDetailsMissing, AttackNameError, SynthError, WordTableError, RequestCacheError])
def test_every_error_class_of_ours_shares_the_base(error):
    """(VLLMLoadError too: importing harness_ext.models.vllm needs the vLLM engine; tests/test_vllm.py.)"""
    assert issubclass(error, UnlearnBenchError)


def test_our_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path / "missing"), "--target", "t", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"unlearn-bench leaderboard: error: run {tmp_path / 'missing'} does not exist\n"


def test_debug_shows_the_traceback_of_our_error_too(tmp_path, capsys):
    code = main(["--debug", "leaderboard", str(tmp_path / "missing"), "--target", "t", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("Traceback (most recent call last):")
    assert "LeaderboardError: run" in err and err.endswith(f"error: run {tmp_path / 'missing'} does not exist\n")


def test_debug_before_eval(monkeypatch, capsys):
    def refuse(argv):
        raise MissingEngineError(f"no engine for {argv}")

    monkeypatch.setattr(evaluation, "run_eval", refuse)
    assert main(["--debug", "eval", "--model", "vllm"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("unlearn-bench eval: error: no engine for ['--model', 'vllm']\n")


@pytest.mark.parametrize("bug", [ValueError("a bug"), OSError("a bug"), KeyError("a bug")])
def test_any_other_exception_keeps_its_traceback(monkeypatch, bug):
    def broken(argv):
        raise bug

    monkeypatch.setattr(evaluation, "run_eval", broken)
    with pytest.raises(type(bug), match="a bug"):
        main(["eval", "--tasks", "unlearn_tofu_forget01"])
