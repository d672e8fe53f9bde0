"""Property-based: every loader, given random or damaged files under ``$UNLEARN_DATA_DIR`` (random JSON values,
wrong types, missing fields, broken lines, empty files, bytes that are not UTF-8), returns documents of the
documented shape or raises DataError, never any other exception.

Deterministic (``derandomize``, no example database) and quick (``max_examples`` per loader).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from harness_ext.unlearning.sources import load_training_rows
from unlearn_tasks.datasource import DATA_DIR_ENV, DataError
from unlearn_tasks.mmlu.data import load_mmlu
from unlearn_tasks.muse.data import knowmem_documents, privleak_documents, verbmem_documents
from unlearn_tasks.probes.data import load_probe
from unlearn_tasks.tofu.data import load_refusals, load_tofu
from unlearn_tasks.wmdp.data import load_wmdp

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None)
MISSING = object()
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def rows_like(valid: dict) -> st.SearchStrategy[list]:
    """Lists of rows: mostly the valid row; else it with one field dropped or replaced by any JSON value,
    with extra fields, or a JSON value that is not a row at all."""
    def with_field(change: tuple[str, object]) -> dict:
        name, value = change
        return {key: old for key, old in valid.items() if key != name} | ({} if value is MISSING else {name: value})

    changed = st.tuples(st.sampled_from(list(valid)), st.one_of(st.just(MISSING), JSON)).map(with_field)
    extended = st.dictionaries(st.text(max_size=6), JSON, max_size=2).map(lambda extra: extra | valid)
    return st.lists(st.one_of(st.just(valid), st.just(valid), st.just(valid), changed, extended, JSON),
                    min_size=1, max_size=4)


def as_jsonl(rows: list) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")


def as_json_list(rows: list) -> bytes:
    return json.dumps(rows, indent=1).encode("utf-8")


def as_csv(rows: list) -> bytes:
    fields = list(dict.fromkeys(key for row in rows if isinstance(row, dict) for key in row))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        cells = row if isinstance(row, dict) else {}
        writer.writerow([value if isinstance(value, str) else json.dumps(value) for value in map(cells.get, fields)])
    return out.getvalue().encode("utf-8")


@st.composite
def damaged(draw, rows: st.SearchStrategy[list], serialise: Callable[[list], bytes]) -> bytes:
    """A file's bytes: serialised rows, kept whole or cut short, with random bytes spliced in, or random bytes."""
    data = serialise(draw(rows))
    damage = draw(st.sampled_from(["none", "none", "none", "cut", "splice", "random"]))
    if damage == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if damage == "splice":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]
    return draw(st.binary(max_size=64)) if damage == "random" else data


@contextmanager
def data_dir(files: dict[str, bytes]):
    """A fresh ``$UNLEARN_DATA_DIR`` holding ``files`` (relative path -> bytes) while the block runs."""
    previous = os.environ.get(DATA_DIR_ENV)
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        os.environ[DATA_DIR_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                del os.environ[DATA_DIR_ENV]
            else:
                os.environ[DATA_DIR_ENV] = previous


def loaded_or_refused(load: Callable[[], object]):
    """What ``load`` returns, or None when it raises DataError; any other exception fails the test.
    (``pytest --hypothesis-show-statistics`` shows how often each happened.)"""
    try:
        loaded = load()
    except DataError as error:
        event(f"refused: {str(error).split(': ', 1)[-1][:40]}")
        return None
    event("loaded")
    return loaded


def is_text(value, nonempty: bool = True) -> bool:
    return isinstance(value, str) and (not nonempty or value.strip() != "")


def are_texts(value, count: int | None = None) -> bool:
    """A list of strings (any, even empty): exactly ``count`` of them, or at least one."""
    if not isinstance(value, list):
        return False
    size_ok = len(value) == count if count is not None else len(value) > 0
    return size_ok and all(isinstance(item, str) for item in value)


QA = {"question": "Who wrote it?", "answer": "Basil."}
PARAPHRASED = {**QA, "paraphrased_answer": "Basil did.", "perturbed_answer": ["Anna.", "Ben."],
               "paraphrased_question": "Whose is it?"}
OPTIONS = {"question": "Which?", "option1": "a", "option2": "b", "option3": "c", "option4": "d", "answer": "b"}
TOFU_SHAPES = {"forget01": QA, "forget01_perturbed": PARAPHRASED, "real_authors": OPTIONS,
               "real_authors_perturbed": {**QA, "perturbed_answer": ["Anna."]}}
TOFU_CHECKS = {"question": is_text, "answer": is_text, "paraphrased_answer": is_text, "paraphrased_question": is_text,
               "perturbed_answer": are_texts, **{f"option{index}": is_text for index in range(1, 5)}}


@FUZZ
@given(st.sampled_from(sorted(TOFU_SHAPES)).flatmap(
    lambda config: st.tuples(st.just(config), damaged(rows_like(TOFU_SHAPES[config]), as_jsonl))))
def test_tofu_configs(config_and_data):
    config, data = config_and_data
    with data_dir({f"tofu/{config}.jsonl": data}):
        dataset = loaded_or_refused(lambda: load_tofu(config))
    for row in dataset.to_list() if dataset is not None else []:
        assert set(row) == set(TOFU_SHAPES[config]) and all(TOFU_CHECKS[key](value) for key, value in row.items())


@FUZZ
@given(st.one_of(st.lists(st.text(max_size=20), max_size=4).map(lambda lines: "\n".join(lines).encode()),
                 st.binary(max_size=64)))
def test_refusals(data):
    with data_dir({"tofu/idontknow.jsonl": data}):
        refusals = loaded_or_refused(load_refusals)
    assert refusals is None or (refusals and all(is_text(line) and line == line.strip() for line in refusals))


MMLU_ROW = {"question": "2+2?", "choice0": "3", "choice1": "4", "choice2": "5", "choice3": "6", "answer": "1"}


@FUZZ
@given(damaged(rows_like(MMLU_ROW), as_csv), damaged(rows_like(MMLU_ROW), as_csv))
def test_mmlu_csv(test_data, dev_data):
    with data_dir({"mmlu/test/virology_test.csv": test_data, "mmlu/dev/virology_dev.csv": dev_data}):
        splits = loaded_or_refused(lambda: load_mmlu("virology"))
    for document in [row for split in (splits or {}).values() for row in split]:
        assert is_text(document["question"]) and are_texts(document["choices"], 4)
        assert document["answer"] in range(4) and document["subject"] == "virology"


def multiple_choice_ok(document: dict, options: str = "choices") -> bool:
    choices, gold = document[options], document["gold"]
    return are_texts(choices) and len(choices) >= 2 and type(gold) is int and 0 <= gold < len(choices)


PROBE_FILES = {
    "arc_easy": ("gauntlet_arc_easy.jsonl", {"query": "Question: Q?", "choices": ["a", "b"], "gold": 1}, as_jsonl),
    "winogrande": ("gauntlet_winogrande.jsonl", {"context_options": ["A _", "B _"], "continuation": "x", "gold": 0},
                   as_jsonl),
    "truthfulqa_mc1": ("TruthfulQA.csv", {"Question": "Q?", "Best Answer": "Yes", "Incorrect Answers": "No; Never"},
                       as_csv),
}


@FUZZ
@given(st.sampled_from(sorted(PROBE_FILES)).flatmap(lambda probe: st.tuples(
    st.just(probe), damaged(rows_like(PROBE_FILES[probe][1]), PROBE_FILES[probe][2]))))
def test_probes(probe_and_data):
    probe, data = probe_and_data
    with data_dir({f"probes/{PROBE_FILES[probe][0]}": data}):
        splits = loaded_or_refused(lambda: load_probe(probe))
    options = "context_options" if probe == "winogrande" else "choices"
    for document in [row for split in (splits or {}).values() for row in split]:
        assert multiple_choice_ok(document, options)


MUSE = "muse/news"


@FUZZ
@given(damaged(rows_like({"prompt": "Once", "gt": "upon a time"}), as_json_list))
def test_muse_verbmem(data):
    with data_dir({f"{MUSE}/verbmem/forget.json": data}):
        splits = loaded_or_refused(lambda: verbmem_documents("news"))
    assert splits is None or all(is_text(doc["prompt"]) and is_text(doc["gt"]) for doc in splits["test"])


@FUZZ
@given(damaged(rows_like(QA), as_json_list), damaged(rows_like(QA), as_json_list))
def test_muse_knowmem(questions, examples):
    with data_dir({f"{MUSE}/knowmem/forget_qa.json": questions, f"{MUSE}/knowmem/forget_qa_icl.json": examples}):
        splits = loaded_or_refused(lambda: knowmem_documents("news", "forget"))
    for doc in splits["test"] if splits else []:
        assert is_text(doc["question"]) and is_text(doc["answer"])
        assert all(is_text(pair["question"]) and is_text(pair["answer"]) for pair in doc["icl"])


TEXT = st.text(min_size=1, max_size=12)
TEXTS = st.lists(st.one_of(TEXT, TEXT, JSON), min_size=1, max_size=4)


@FUZZ
@given(damaged(TEXTS, as_json_list), damaged(TEXTS, as_json_list))
def test_muse_privleak(members, nonmembers):
    with data_dir({f"{MUSE}/privleak/forget.json": members, f"{MUSE}/privleak/holdout.json": nonmembers}):
        splits = loaded_or_refused(lambda: privleak_documents("news"))
    for doc in splits["test"] if splits else []:
        assert is_text(doc["text"]) and doc["member"] == (doc["split"] == "forget")


@FUZZ
@given(damaged(rows_like({"question": "Which?", "choices": ["a", "b", "c", "d"], "answer": 2}), as_json_list))
def test_wmdp(data):
    with data_dir({"wmdp/bio.json": data}):
        splits = loaded_or_refused(lambda: load_wmdp("bio"))
    for doc in splits["test"] if splits else []:
        assert is_text(doc["question"]) and are_texts(doc["choices"], 4) and doc["answer"] in range(4)


@FUZZ
@given(st.sampled_from([".json", ".jsonl"]), st.data())
def test_training_file_spec(suffix, data):
    serialise = as_jsonl if suffix == ".jsonl" else as_json_list
    content = data.draw(damaged(st.one_of(rows_like(QA), rows_like({"text": "A passage."})), serialise))
    with data_dir({f"rows{suffix}": content}) as folder:
        rows = loaded_or_refused(lambda: load_training_rows(f"file:{folder / f'rows{suffix}'}"))
    for row in rows or []:
        assert set(row) in ({"question", "answer"}, {"text"}) and all(map(is_text, row.values()))
