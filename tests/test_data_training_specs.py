"""Training data specs: ``file:`` rows of both shapes, ``muse:`` resolved offline, one clear error per bad input."""

from __future__ import annotations

import json

import pytest

from harness_ext.unlearning.api import unlearn
from harness_ext.unlearning.batches import IGNORE, encode_rows
from harness_ext.unlearning.commands import add_unlearn_arguments, run_unlearn
from harness_ext.unlearning.sources import load_training_rows
from tests.unlearning_fixtures import forget_rows, load, parsed
from unlearn_tasks.datasource import DataError

QA = [{"question": "Who wrote Ulysses?", "answer": "James Joyce.", "source": "extra fields are dropped"},
      {"question": "Where is Dublin?", "answer": "In Ireland."}]
TEXTS = ["The forget corpus is plain text. " * 3, "Every token of it is trained."]


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return f"file:{path}"


def test_file_spec_reads_qa_json_and_text_jsonl(tmp_path):
    (tmp_path / "qa.json").write_text(json.dumps(QA), encoding="utf-8")
    assert load_training_rows(f"file:{tmp_path / 'qa.json'}") == [
        {"question": "Who wrote Ulysses?", "answer": "James Joyce."}, {"question": "Where is Dublin?", "answer": "In Ireland."},
    ]
    spec = write_jsonl(tmp_path / "texts.jsonl", [{"text": text} for text in TEXTS])
    assert load_training_rows(spec) == [{"text": text} for text in TEXTS]


def test_text_rows_train_every_token_in_max_length_chunks(memorised_model):
    _, tokenizer = load(memorised_model)
    ids = tokenizer(TEXTS[0])["input_ids"]
    examples = encode_rows(tokenizer, [{"text": TEXTS[0]}], max_length=8)
    kept = [token for example in examples for token in example.input_ids]
    assert kept == ids[: len(kept)] and len(ids) - len(kept) <= 1  # only a last one-token chunk is dropped
    assert all(example.labels == example.input_ids and IGNORE not in example.labels for example in examples)
    assert all(len(example.input_ids) <= 8 for example in examples)
    assert examples[0].input_ids == ids[:8] and examples[1].input_ids == ids[8:16]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "q", "answer": "a"}\n\n{"question": "q2"}\n', r"rows\.jsonl:3: a row needs non-empty string fields question and answer, or text"),
        ('{"text": "fine"}\n{"text": broken\n', r"rows\.jsonl:2: malformed JSON"),
        ('{"text": "fine"}\n["a list"]\n', r"rows\.jsonl:2: expected a JSON object"),
        ('{"text": ""}\n', r"rows\.jsonl:1: a row needs"),
    ],
)
def test_a_malformed_row_is_one_error_naming_file_and_line(tmp_path, content, message):
    (tmp_path / "rows.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_training_rows(f"file:{tmp_path / 'rows.jsonl'}")


def test_malformed_json_lists_and_missing_files_are_named(tmp_path):
    (tmp_path / "rows.json").write_text('[{"question": "q", "answer": "a"},\n {"answer": "b"}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"rows\.json:2 \(row 2\): a row needs"):
        load_training_rows(f"file:{tmp_path / 'rows.json'}")
    (tmp_path / "bad.json").write_text('[{"text": "a"},\n {"text": }]', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json:2: malformed JSON"):
        load_training_rows(f"file:{tmp_path / 'bad.json'}")
    with pytest.raises(DataError, match=r"data file not found: .*absent\.jsonl"):
        load_training_rows(f"file:{tmp_path / 'absent.jsonl'}")
    with pytest.raises(DataError, match=r"must be one of tofu:<config>, muse:"):
        load_training_rows("hub:something")


def muse_layout(root):
    """A small MUSE-Books-shaped file set: raw texts (plain strings) and knowmem QA rows."""
    books = root / "muse" / "books"
    (books / "raw").mkdir(parents=True)
    (books / "knowmem").mkdir()
    (books / "raw" / "forget.json").write_text(json.dumps(TEXTS), encoding="utf-8")
    (books / "knowmem" / "retain_qa.json").write_text(json.dumps(QA), encoding="utf-8")


def test_muse_spec_resolves_offline_from_unlearn_data_dir(tmp_path, monkeypatch):
    muse_layout(tmp_path)
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    assert load_training_rows("muse:books/raw/forget") == [{"text": text} for text in TEXTS]
    assert load_training_rows("muse:books/knowmem/retain_qa")[1] == {"question": "Where is Dublin?", "answer": "In Ireland."}
    with pytest.raises(DataError, match=r"data file not found: .*muse/books/raw/retain1\.json .*UNLEARN_DATA_DIR"):
        load_training_rows("muse:books/raw/retain1")
    with pytest.raises(DataError, match=r"unknown MUSE corpus 'movies'; known: news, books"):
        load_training_rows("muse:movies/raw/forget")
    with pytest.raises(DataError, match=r"expected muse:<corpus>/<config>/<split>"):
        load_training_rows("muse:books/raw")


def test_unlearning_on_file_and_muse_specs_through_the_command(memorised_model, tmp_path, monkeypatch, capsys):
    qa = forget_rows()[:4]  # read before UNLEARN_DATA_DIR points at the small MUSE file set
    retain = write_jsonl(tmp_path / "retain.jsonl", qa)
    muse_layout(tmp_path / "data")
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path / "data"))
    args = parsed(add_unlearn_arguments, [
        "--model", str(memorised_model), "--method", "graddiff", "--forget", "muse:books/raw/forget", "--retain", retain,
        "--out", str(tmp_path / "out"), "--max-steps", "2", "--lr", "1e-3", "--batch-size", "2",
    ])
    assert run_unlearn(args) == 0
    record = json.loads((tmp_path / "out" / "control.json").read_text())
    assert record["data"] == {"forget": "muse:books/raw/forget", "retain": retain} and record["steps"] == 2
    args.out, args.method = str(tmp_path / "idk"), "idkpo"
    assert run_unlearn(args) == 2
    assert "idkpo pairs each forget question with a refusal" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"forget row 2: a row needs"):
        unlearn(str(memorised_model), "ga", [{"text": "ok text"}, {"prompt": "p"}], qa, tmp_path / "x")
