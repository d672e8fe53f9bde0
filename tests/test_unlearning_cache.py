"""The target metric cache: keyed on every ingredient of the value, safe under concurrent writers."""

from __future__ import annotations

import multiprocessing

import pytest
import torch

from harness_ext import provenance
from harness_ext.unlearning.metric import MetricSpec
from harness_ext.unlearning.target_cache import TargetCache, target_ingredients
from tests.unlearning_fixtures import load


def data_dir(root, forget_text: str):
    """A minimal $UNLEARN_DATA_DIR whose tofu/forget01.jsonl holds ``forget_text``."""
    (root / "tofu").mkdir(parents=True, exist_ok=True)
    (root / "tofu" / "forget01.jsonl").write_text(forget_text, encoding="utf-8")
    return root


class Counting:
    """``compute`` callables that record each recomputation."""

    def __init__(self):
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return 0.5 + self.calls


def test_each_ingredient_of_the_value_is_in_the_key(memorised_model, tmp_path, monkeypatch):
    cache, compute = TargetCache(tmp_path / "cache"), Counting()
    target, tokenizer = load(memorised_model)
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(data_dir(tmp_path / "data", '{"question": "q", "answer": "a"}\n')))

    def recomputes(model=target, spec=MetricSpec(limit=4)) -> bool:
        before = compute.calls
        cache.value(target_ingredients(model, tokenizer, spec.task_config()), compute)
        return compute.calls > before

    assert recomputes() and not recomputes()
    other = load(memorised_model)[0]
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1e-3
    assert recomputes(model=other)
    assert recomputes(model=load(memorised_model)[0].to(torch.bfloat16))
    assert recomputes(spec=MetricSpec(task="unlearn_tofu_forget01", limit=4))
    assert recomputes(spec=MetricSpec(metric="rougeL_retain", limit=4))
    assert recomputes(spec=MetricSpec(limit=4, metadata={"convention": "open-unlearning"}))
    assert recomputes(spec=MetricSpec(limit=5))
    assert not recomputes()
    data_dir(tmp_path / "data", '{"question": "q", "answer": "another answer"}\n')
    assert recomputes() and not recomputes()
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(data_dir(tmp_path / "copy", '{"question": "q", "answer": "another answer"}\n')))
    assert recomputes() and not recomputes()
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "changed code")
    assert recomputes() and not recomputes()
    monkeypatch.setattr(provenance, "package_version", lambda: "9.9.9")
    assert recomputes() and not recomputes()
    monkeypatch.delenv("UNLEARN_DATA_DIR")
    assert recomputes() and not recomputes()


def test_a_damaged_entry_is_recomputed_and_replaced(tmp_path):
    cache, compute = TargetCache(tmp_path), Counting()
    ingredients = {"model": "m", "task_config": {"task": "t"}}
    assert cache.value(ingredients, compute) == (1.5, False)
    for damage in ('{"value": 0.', '{"other": 1}', '{"value": "NaN"}', ""):
        cache.entry(ingredients).write_text(damage, encoding="utf-8")
        assert cache.value(ingredients, compute) == (0.5 + compute.calls, False)
        assert cache.value(ingredients, compute) == (0.5 + compute.calls, True)


def write_entries(folder, writer: int, count: int, start) -> None:
    """One writer process: ``count`` entries of its own, written as fast as it can."""
    start.wait()
    cache = TargetCache(folder)
    for number in range(count):
        cache.value({"writer": writer, "number": number}, lambda: float(writer * 1000 + number))


def test_concurrent_writers_of_different_keys_lose_no_entry(tmp_path):
    context = multiprocessing.get_context("fork")
    start, count = context.Barrier(2), 150
    writers = [context.Process(target=write_entries, args=(tmp_path, writer, count, start)) for writer in (1, 2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
        assert process.exitcode == 0
    cache = TargetCache(tmp_path)
    for writer in (1, 2):
        stored = [cache.lookup({"writer": writer, "number": number}) for number in range(count)]
        assert stored == [float(writer * 1000 + number) for number in range(count)]
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize(("task", "folders"), [
    ("unlearn_tofu_utility", ["tofu"]), ("unlearn_tofu_mia_forget01", ["tofu"]), ("unlearn_fluency_retain", ["tofu"]),
    ("unlearn_muse_news_verbmem", ["muse/news"]), ("unlearn_mmlu_anatomy", ["mmlu"]), ("unlearn_probe_piqa", ["probes"]),
    ("unlearn_wmdp_bio", ["wmdp"]), ("unlearn_all_forget01", ["."]),
])
def test_tasks_are_fingerprinted_on_the_folders_they_read(task, folders, tmp_path, monkeypatch):
    assert provenance.data_folders([task]) == folders
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(data_dir(tmp_path, "x\n")))
    fingerprint = provenance.data_fingerprint([task])
    assert fingerprint["source"] == str(tmp_path.resolve()) and fingerprint["folders"] == folders
    monkeypatch.delenv("UNLEARN_DATA_DIR")
    assert provenance.data_fingerprint([task]) == {"source": "hub", "folders": folders}


def test_only_the_files_of_the_tasks_family_count(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(data_dir(tmp_path, "x\n")))
    tofu, everything = (provenance.data_fingerprint([task]) for task in ("unlearn_tofu_utility", "unlearn_all_forget01"))
    (tmp_path / "wmdp").mkdir()
    (tmp_path / "wmdp" / "bio.json").write_text("[]", encoding="utf-8")
    assert provenance.data_fingerprint(["unlearn_tofu_utility"]) == tofu
    assert provenance.data_fingerprint(["unlearn_all_forget01"]) != everything


def test_the_code_fingerprint_covers_the_package_version(monkeypatch):
    before = provenance.code_fingerprint()
    assert provenance.code_fingerprint() == before
    monkeypatch.setattr(provenance, "package_version", lambda: "9.9.9")
    assert provenance.code_fingerprint() != before
