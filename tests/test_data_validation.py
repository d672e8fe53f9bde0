"""Every loader checks each documented field's type: a bad row is one DataError naming its file and line
(or hub row), and a row that passes becomes a document with those fields only."""

from __future__ import annotations

import json

import datasets
import pytest

from unlearn_tasks.datasource import DataError, read_csv, read_json_list, read_jsonl
from unlearn_tasks.mmlu.data import load_mmlu
from unlearn_tasks.muse.data import knowmem_documents, privleak_documents, verbmem_documents
from unlearn_tasks.probes.data import load_probe
from unlearn_tasks.tofu.data import load_tofu
from unlearn_tasks.tofu.documents import tofu_forget_documents
from unlearn_tasks.wmdp.data import load_wmdp

QA = {"question": "Who wrote it?", "answer": "Basil."}
PARAPHRASED = {**QA, "paraphrased_answer": "It was Basil.", "perturbed_answer": ["Anna.", "Ben."],
               "paraphrased_question": "Whose is it?"}
OPTIONS = {"question": "Which?", "option1": "a", "option2": "b", "option3": "c", "option4": "d", "answer": "b"}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    return tmp_path


def write(path, text: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def jsonl(rows: list) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_a_perturbed_answer_given_as_a_string_is_refused_not_split_into_characters(data_dir):
    rows = [PARAPHRASED, {**PARAPHRASED, "perturbed_answer": "Anna."}]
    path = write(data_dir / "tofu" / "forget01_perturbed.jsonl", jsonl(rows))
    with pytest.raises(DataError, match=rf"^{path}:2: field 'perturbed_answer' must be a non-empty list of strings, "
                                        r"got a string 'Anna\.'$"):
        tofu_forget_documents("forget01_perturbed")


@pytest.mark.parametrize(("config", "good", "field", "bad", "message"), [
    ("forget01", QA, "answer", 7, "must be a non-empty string, got an integer 7"),
    ("holdout05", QA, "question", "  ", "must be a non-empty string"),
    ("retain_perturbed", PARAPHRASED, "paraphrased_question", ["a"], "must be a non-empty string, got a list"),
    ("forget10_perturbed", PARAPHRASED, "perturbed_answer", [], "must be a non-empty list of strings"),
    ("forget10_perturbed", PARAPHRASED, "perturbed_answer", ["a", 2], "must be a non-empty list of strings"),
    ("real_authors_perturbed", {**QA, "perturbed_answer": ["x"]}, "perturbed_answer", {"a": 1}, "got an object"),
    ("world_facts", OPTIONS, "option3", None, r"missing field\(s\) \['option3'\]"),
    ("real_authors", OPTIONS, "answer", True, "must be a non-empty string, got a boolean True"),
])
def test_each_tofu_shape_checks_its_fields(data_dir, config, good, field, bad, message):
    path = write(data_dir / "tofu" / f"{config}.jsonl", jsonl([good]))
    assert load_tofu(config).to_list() == [good]
    write(path, jsonl([good]) + "\n" + jsonl([{**good, field: bad}]))  # line 2 blank, the bad row on line 3
    with pytest.raises(DataError, match=rf"{path}:3: .*{message}"):
        load_tofu(config)


def test_tofu_keeps_only_documented_fields_and_refuses_an_empty_config(data_dir):
    path = write(data_dir / "tofu" / "forget01.jsonl", jsonl([{**QA, "source": {"nested": [1, 2]}}]))
    assert load_tofu("forget01").column_names == ["question", "answer"]
    write(path, "\n\n")
    with pytest.raises(DataError, match=rf"{path}: no rows"):
        load_tofu("forget01")


def test_the_forget_task_refuses_a_config_without_paraphrases(data_dir):
    write(data_dir / "tofu" / "forget01.jsonl", jsonl([QA]))
    with pytest.raises(DataError, match="the forget task needs a config with fields"):
        tofu_forget_documents("forget01")


def test_hub_rows_are_checked_and_named_by_their_number(monkeypatch):
    rows = [{**QA, "perturbed_answer": ["x"]}]
    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda **kwargs: rows)
    assert load_tofu("world_facts_perturbed").to_list() == rows
    rows.append({**QA, "perturbed_answer": "Not a list"})
    with pytest.raises(DataError, match="locuslab/TOFU world_facts_perturbed row 2: field 'perturbed_answer' must be"):
        load_tofu("world_facts_perturbed")


MMLU_HEADER = "question,choice0,choice1,choice2,choice3,answer\n"


@pytest.mark.parametrize(("row", "message"), [
    ("Q,a,b,c,d,4", r":2: field 'answer' must be one of 0, 1, 2, 3, got a string '4'"),
    ("Q,a,b,c,d, 1", r":2: field 'answer' must be one of 0, 1, 2, 3"),
    ("Q,a,b,c", r":2: missing field\(s\) \['choice3', 'answer'\]"),
    ('"Q,a,b,c,d,1', r":2: missing field\(s\)"),  # an unterminated quote swallows the rest of the file
    (",a,b,c,d,1", r":2: field 'question' must be a non-empty string"),
])
def test_mmlu_csv_rows(data_dir, row, message):
    write(data_dir / "mmlu" / "dev" / "virology_dev.csv", MMLU_HEADER + "Q,a,b,c,d,0\n")
    path = write(data_dir / "mmlu" / "test" / "virology_test.csv", MMLU_HEADER + row + "\n")
    with pytest.raises(DataError, match=rf"{path}{message}"):
        load_mmlu("virology")


def test_mmlu_hub_rows_need_four_choices_and_an_index(monkeypatch):
    rows = [{"question": "Q", "subject": "virology", "choices": ["a", "b", "c"], "answer": 0}]
    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda **kwargs: rows)
    with pytest.raises(DataError, match=r"cais/mmlu virology/test row 1: field 'choices' must be a list of 4 strings"):
        load_mmlu("virology")


@pytest.mark.parametrize(("probe", "file", "row", "message"), [
    ("arc_easy", "gauntlet_arc_easy.jsonl", {"query": "Q", "choices": ["a", "b"], "gold": 2},
     "gold 2 must pick one of at least 2 choices; there are 2"),
    ("arc_easy", "gauntlet_arc_easy.jsonl", {"query": "Q", "choices": ["a"], "gold": 0}, "at least 2 choices"),
    ("piqa", "gauntlet_piqa.jsonl", {"query": "Q", "choices": "ab", "gold": 0}, "'choices' must be a non-empty list"),
    ("piqa", "gauntlet_piqa.jsonl", {"query": "Q", "choices": ["a", "b"], "gold": -1}, "'gold' must be a non-negative"),
    ("hellaswag", "hellaswag_val_sample1000.jsonl",
     {"activity_label": "A", "ctx_a": "x", "ctx_b": "", "endings": ["1", "2", "3"], "label": 0}, "list of 4 strings"),
    ("winogrande", "gauntlet_winogrande.jsonl", {"context_options": ["a", "b"], "continuation": "c", "gold": 2},
     "'gold' must be an integer from 0 to 1"),
    ("triviaqa", "gauntlet_triviaqa_sm_sub.jsonl", {"context": "Q", "aliases": "Paris"}, "'aliases' must be"),
    ("lambada", "gauntlet_lambada_openai.jsonl", {"context": "a", "continuation": ""}, "'continuation' must be"),
])
def test_probe_rows(data_dir, probe, file, row, message):
    path = write(data_dir / "probes" / file, jsonl([row]))
    with pytest.raises(DataError, match=rf"{path}:1: .*{message}"):
        load_probe(probe)


def test_truthfulqa_csv_needs_a_wrong_answer(data_dir):
    header = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
    rows = 'A,B,Q?,Yes,Yes,"No; Never",S\nA,B,Q2?,Yes,Yes,";",S\n'
    path = write(data_dir / "probes" / "TruthfulQA.csv", header + rows)
    with pytest.raises(DataError, match=rf"{path}:3: gold 0 must pick one of at least 2 choices; there are 1"):
        load_probe("truthfulqa_mc1")


def test_a_hub_row_that_cannot_be_mapped_names_its_number(monkeypatch):
    rows = [{"question": "Q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "C"}]
    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", lambda **kwargs: rows)
    with pytest.raises(DataError, match="allenai/ai2_arc ARC-Easy test row 1: cannot be read as a document"):
        load_probe("arc_easy")


def test_muse_splits(data_dir):
    folder = data_dir / "muse" / "news"
    path = write(folder / "verbmem" / "forget.json", '[\n  {"prompt": "p", "gt": "g"},\n  {"prompt": "p", "gt": 3}\n]')
    with pytest.raises(DataError, match=rf"{path}:3 \(row 2\): field 'gt' must be a non-empty string, got an integer"):
        verbmem_documents("news")
    write(folder / "knowmem" / "retain_qa.json", json.dumps([QA]))
    path = write(folder / "knowmem" / "retain_qa_icl.json", json.dumps([QA, {"question": "q"}]))
    with pytest.raises(DataError, match=rf"{path}:1 \(row 2\): missing field\(s\) \['answer'\]"):
        knowmem_documents("news", "retain")
    write(folder / "privleak" / "forget.json", json.dumps(["a text"]))
    path = write(folder / "privleak" / "holdout.json", '["a text",\n""]')
    with pytest.raises(DataError, match=rf"{path}:2 \(row 2\): expected a non-empty string, got a string ''"):
        privleak_documents("news")


@pytest.mark.parametrize(("row", "message"), [
    ({"question": "Q", "choices": ["a", "b", "c"], "answer": 0}, "'choices' must be a list of 4 strings"),
    ({"question": "Q", "choices": ["a", "b", "c", 4], "answer": 0}, "'choices' must be a list of 4 strings"),
    ({"question": "Q", "choices": ["a", "b", "c", "d"], "answer": 4}, "'answer' must be an integer from 0 to 3"),
    ({"question": "Q", "choices": ["a", "b", "c", "d"], "answer": "1"}, "'answer' must be an integer from 0 to 3"),
    ({"question": 5, "choices": ["a", "b", "c", "d"], "answer": 1}, "'question' must be a non-empty string"),
    (["Q", "a"], "expected an object with fields"),
])
def test_wmdp_rows(data_dir, row, message):
    good = {"question": "Q", "choices": list("abcd"), "answer": 1}
    path = write(data_dir / "wmdp" / "bio.json", json.dumps([good, row]))
    with pytest.raises(DataError, match=rf"{path}:1 \(row 2\): .*{message}"):
        load_wmdp("bio")


def test_readers_name_the_line_of_bytes_that_are_not_utf8_or_not_unicode(tmp_path):
    path = write(tmp_path / "rows.jsonl", b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"{path}:2: not UTF-8 text"):
        read_jsonl(path)
    write(path, b'{"a": "ok"}\n{"a": "\\ud800"}\n')
    with pytest.raises(DataError, match=rf"{path}:2: a JSON string holds an unpaired surrogate escape"):
        read_jsonl(path)
    write(path, "[" * 100_000)
    with pytest.raises(DataError, match=rf"{path}:1: (malformed JSON|JSON nested too deeply)"):
        read_jsonl(path)
    write(path, '{"gold": ' + "9" * 5000 + "}\n")
    with pytest.raises(DataError, match=rf"{path}:1: unreadable JSON \(Exceeds the limit"):
        read_jsonl(path)


def test_json_list_rows_carry_the_line_they_start_on(tmp_path):
    path = write(tmp_path / "rows.json", '\ufeff\n[ {"a": 1},\n\n  {"a":\n 2}, "t",\n 3 ]\n')
    assert [(row.where, row.value) for row in read_json_list(path)] == [
        (f"{path}:2 (row 1)", {"a": 1}), (f"{path}:4 (row 2)", {"a": 2}), (f"{path}:5 (row 3)", "t"),
        (f"{path}:6 (row 4)", 3)]
    write(path, '[{"a": 1},\n {"a": }]')
    with pytest.raises(DataError, match=rf"{path}:2: malformed JSON"):
        read_json_list(path)


def test_csv_rows_carry_their_first_line(tmp_path):
    path = write(tmp_path / "rows.csv", 'q,a\n"two\nlines",1\nx,2\n')
    assert [(row.where, row.value) for row in read_csv(path)] == [(f"{path}:2", {"q": "two\nlines", "a": "1"}),
                                                                 (f"{path}:4", {"q": "x", "a": "2"})]
    assert read_csv(write(path, "")) == []


def test_a_training_file_goes_through_the_same_readers(tmp_path):
    from harness_ext.unlearning.sources import load_training_rows

    path = write(tmp_path / "forget.json", "[]")
    with pytest.raises(DataError, match=rf"{path}: no rows"):
        load_training_rows(f"file:{path}")
    path = write(tmp_path / "forget.jsonl", b'{"text": "fine"}\n{"text": "\xff"}\n')
    with pytest.raises(DataError, match=rf"{path}:2: not UTF-8 text"):
        load_training_rows(f"file:{path}")
