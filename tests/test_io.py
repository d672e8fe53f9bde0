"""Atomic folder output: the swap of an old folder for a new one, and recovery after a crash inside it."""

from __future__ import annotations

import os
import sys

import pytest

from harness_ext import io
from harness_ext.io import atomic_folder, recover_folder


def writing(name: str, text: str):
    return lambda folder: (folder / name).write_text(text, encoding="utf-8")


def contents(folder) -> dict:
    return {path.name: path.read_text(encoding="utf-8") for path in folder.iterdir()}


@pytest.fixture(params=["exchange", "renames"])
def swap(request, monkeypatch):
    """Each test runs with the one-step exchange and with the two-rename fallback."""
    if request.param == "exchange" and io._renameat2() is None:
        pytest.skip("renameat2 is Linux-only")
    if request.param == "renames":
        monkeypatch.setattr(io, "_exchange", lambda first, second: False)
    return request.param


def test_an_existing_folder_is_replaced_whole_with_nothing_left_beside_it(tmp_path, swap):
    out = tmp_path / "out"
    atomic_folder(out, writing("old.txt", "old"))
    atomic_folder(out, writing("new.txt", "new"))
    assert contents(out) == {"new.txt": "new"}
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_a_failed_write_keeps_the_previous_folder(tmp_path, swap):
    out = tmp_path / "out"
    atomic_folder(out, writing("old.txt", "old"))

    def failing(folder):
        (folder / "half.txt").write_text("half", encoding="utf-8")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_folder(out, failing)
    assert contents(out) == {"old.txt": "old"} and [path.name for path in tmp_path.iterdir()] == ["out"]


def crash_between_the_renames(out) -> None:
    """In a child process: replace ``out`` by two renames and die (no cleanup) right after the first."""
    io._exchange = lambda first, second: False
    renames = []
    real_rename = os.rename

    def rename(source, destination):
        if renames:
            os._exit(7)  # a crash: no exception handler or finally block runs
        renames.append(source)
        real_rename(source, destination)

    os.rename = rename
    atomic_folder(out, writing("new.txt", "new"))


def crash_in_a_child(out) -> int:
    """Run :func:`crash_between_the_renames` in a forked process; its exit code (7: crashed as simulated)."""
    child = os.fork()
    if child == 0:
        try:
            crash_between_the_renames(out)
        finally:
            os._exit(1)  # only reached if the crash was not simulated
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="simulates the crash in a forked process")
def test_a_crash_between_the_two_renames_leaves_the_previous_folder_recoverable(tmp_path):
    out = tmp_path / "out"
    atomic_folder(out, writing("old.txt", "old"))
    assert crash_in_a_child(out) == 7
    assert not out.exists()
    recover_folder(out)
    assert contents(out) == {"old.txt": "old"}
    assert not [path for path in tmp_path.iterdir() if ".old-" in path.name]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="simulates the crash in a forked process")
def test_the_next_write_recovers_the_previous_folder_first(tmp_path):
    out = tmp_path / "out"
    atomic_folder(out, writing("old.txt", "old"))
    crash_in_a_child(out)
    with pytest.raises(RuntimeError):
        atomic_folder(out, lambda folder: (_ for _ in ()).throw(RuntimeError("fails too")))
    assert contents(out) == {"old.txt": "old"}
    assert not [path for path in tmp_path.iterdir() if ".old-" in path.name]


def test_recovery_drops_leftover_old_copies_when_the_folder_is_there(tmp_path):
    out = tmp_path / "out"
    atomic_folder(out, writing("new.txt", "new"))
    (tmp_path / ".out.old-123").mkdir()
    (tmp_path / ".out.old-123" / "old.txt").write_text("old", encoding="utf-8")
    (tmp_path / ".other.old-5").mkdir()
    recover_folder(out)
    assert contents(out) == {"new.txt": "new"}
    assert sorted(path.name for path in tmp_path.iterdir()) == [".other.old-5", "out"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_the_exchange_swaps_two_folders_and_reports_real_errors(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, text in ((first, "a"), (second, "b")):
        folder.mkdir()
        writing("x.txt", text)(folder)
    assert io._exchange(first, second)
    assert contents(first) == {"x.txt": "b"} and contents(second) == {"x.txt": "a"}
    with pytest.raises(FileNotFoundError):
        io._exchange(tmp_path / "missing", second)


def test_an_unlearning_output_check_restores_a_checkpoint_left_aside(tmp_path):
    from harness_ext.unlearning.checkpoint import check_out
    from harness_ext.unlearning.config import UnlearnError

    (tmp_path / ".out.old-99").mkdir()
    (tmp_path / ".out.old-99" / "model.safetensors").write_text("weights", encoding="utf-8")
    with pytest.raises(UnlearnError, match="not empty"):
        check_out(tmp_path / "out", overwrite=False)
    assert contents(tmp_path / "out") == {"model.safetensors": "weights"}
