"""Bad input to `unlearn-bench eval`: one clear error, non-zero exit, no results file written."""

from __future__ import annotations

import json
import shutil

import pytest

from harness_ext.cli import main
from tests.conftest import TOFU_DIR
from unlearn_tasks.datasource import DataError, read_jsonl
from unlearn_tasks.tofu.data import tofu_hub_arguments


def _eval(model, out, *extra):
    return main(["eval", "--model", "hf", "--model_args", f"pretrained={model}", "--tasks", "unlearn_tofu_forget01",
                 "--limit", "2", "--batch_size", "4", "--output_path", str(out), *extra])


def _fails_cleanly(capsys, code, out, *words):
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert error and error[-1].startswith("unlearn-bench eval: error:"), error[-3:]
    for word in words:
        assert word in error[-1]
    assert not out.exists() or not list(out.rglob("results_*.json"))


def test_missing_checkpoint(tmp_path, capsys, tofu_data_dir):
    out = tmp_path / "out"
    _fails_cleanly(capsys, _eval(tmp_path / "no-such-model", out), out, "checkpoint not found", "no-such-model")


@pytest.fixture
def broken_data(tmp_path, monkeypatch):
    """A copy of the TOFU folder to break; UNLEARN_DATA_DIR points at it."""
    if not TOFU_DIR.exists():
        pytest.skip(f"real TOFU data not found at {TOFU_DIR}")
    root = tmp_path / "data"
    shutil.copytree(TOFU_DIR, root / "tofu")
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(root))
    return root / "tofu"


def test_missing_config_file(memorised_model, broken_data, tmp_path, capsys):
    (broken_data / "forget01_perturbed.jsonl").unlink()
    out = tmp_path / "out"
    _fails_cleanly(capsys, _eval(memorised_model, out), out, "forget01_perturbed.jsonl", "UNLEARN_DATA_DIR")


def test_malformed_line_names_file_and_line(memorised_model, broken_data, tmp_path, capsys):
    path = broken_data / "forget01_perturbed.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:-5]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    _fails_cleanly(capsys, _eval(memorised_model, out), out, f"{path}:3")


def test_mismatched_retain_ref(memorised_model, tmp_path, capsys, tofu_data_dir):
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"forget_truth_ratio": {"value_by_index": {"0": {"score": 1.0}}}}))
    out = tmp_path / "out"
    metadata = {"retain_ref": str(reference), "convention": "open-unlearning"}
    code = _eval(memorised_model, out, "--metadata", json.dumps(metadata))
    _fails_cleanly(capsys, code, out, "1 items", "40 documents")


def test_open_unlearning_retain_log_in_a_default_convention_run(memorised_model, tmp_path, capsys, tofu_data_dir):
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"forget_truth_ratio": {"value_by_index": {"0": {"score": 1.0}}}}))
    out = tmp_path / "out"
    code = _eval(memorised_model, out, "--metadata", json.dumps({"retain_ref": str(reference)}))
    _fails_cleanly(capsys, code, out, "open-unlearning retain log", "convention 'default'")


def test_retain_ref_under_another_system_instruction(memorised_model, tmp_path, capsys, tofu_data_dir):
    from unlearn_tasks.tofu.reference import FORMAT

    questions = [json.loads(line)["question"] for line in (TOFU_DIR / "forget01_perturbed.jsonl").read_text().splitlines()]
    settings = {"convention": "default", "task_version": 1, "chat_template": None, "system_instruction": None}
    entry = {"settings": settings, "questions": questions, "truth_ratio": [1.0] * len(questions)}
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"format": FORMAT, "tasks": {"unlearn_tofu_forget01": entry}}))
    out = tmp_path / "out"
    code = _eval(memorised_model, out, "--metadata", json.dumps({"retain_ref": str(reference)}),
                 "--system_instruction", "Answer briefly.")
    _fails_cleanly(capsys, code, out, "system_instruction: reference None, this run 'Answer briefly.'")


def test_unreadable_retain_ref(memorised_model, tmp_path, capsys, tofu_data_dir):
    reference = tmp_path / "ref.json"
    reference.write_text("{not json")
    out = tmp_path / "out"
    code = _eval(memorised_model, out, "--metadata", json.dumps({"retain_ref": str(reference)}))
    _fails_cleanly(capsys, code, out, "ref.json", "not readable JSON")


def test_read_jsonl_rejects_non_objects(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n[1, 2]\n')
    with pytest.raises(DataError, match=f"{path}:2: expected a JSON object"):
        read_jsonl(path)


def test_hub_arguments_name_locuslab_tofu():
    assert tofu_hub_arguments("forget10_perturbed") == {"path": "locuslab/TOFU", "name": "forget10_perturbed", "split": "train"}


def test_hub_is_used_without_a_local_dir(monkeypatch):
    from unlearn_tasks.tofu import data

    calls = []

    def load_dataset(**arguments):
        calls.append(arguments)
        return data.datasets.Dataset.from_list([{"question": "Who?", "answer": "Basil.", "extra": 1}])

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    monkeypatch.setattr(data.datasets, "load_dataset", load_dataset)
    assert data.load_tofu("retain90").to_list() == [{"question": "Who?", "answer": "Basil."}]  # documented fields only
    assert calls == [{"path": "locuslab/TOFU", "name": "retain90", "split": "train"}]


def test_atomic_output_leaves_the_old_file_when_writing_fails(tmp_path):
    from harness_ext.io import atomic_output, atomic_write_text

    path = atomic_write_text(tmp_path / "results.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as stream:
            stream.write("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]
    assert path.stat().st_mode & 0o044  # readable by others like any plain file (not mkstemp's 0600)


def test_unwritable_output_is_one_clear_error(tmp_path):
    from harness_ext.io import OutputError, atomic_write_text

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(blocker / "inside" / "out.json", "{}")


def test_request_cache_is_refused_in_one_line(memorised_model, tmp_path, capsys, tofu_data_dir):
    out = tmp_path / "out"
    code = _eval(memorised_model, out, "--cache_requests", "true")
    _fails_cleanly(capsys, code, out, "unlearn_tofu_forget01 cannot use lm-eval's request cache")
