"""The synthetic TOFU-format benchmark: determinism, TOFU's layout, splits, perturbations, loading."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import pytest

from harness_ext.demo import synth
from unlearn_tasks.datasource import DATA_DIR_ENV
from unlearn_tasks.tofu import data

PLAIN_FIELDS = ["question", "answer"]
PERTURBED_FIELDS = ["question", "answer", "paraphrased_answer", "perturbed_answer", "paraphrased_question"]
CHOICE_FIELDS = ["question", "option1", "option2", "option3", "option4", "answer"]
CHOICE_PERTURBED_FIELDS = ["question", "answer", "perturbed_answer"]
NAME_PATTERN = re.compile(
    r"\b(?:%s) (?:%s)\b" % ("|".join(synth.FIRST_NAMES), "|".join(synth.LAST_NAMES))
)


def read(root: Path, config: str) -> list[dict]:
    path = root / "tofu" / f"{config}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def author_of(question: str) -> str:
    """The one author name in a question (found with the name tables, independently of the generator)."""
    names = NAME_PATTERN.findall(question)
    assert len(names) == 1, question
    return names[0]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    return synth.write_benchmark(tmp_path_factory.mktemp("synth") / "data", authors=40, seed=0)


def test_writes_exactly_tofus_files(bench):
    expected = {f"{config}.jsonl" for config in data.TOFU_CONFIGS} | {"idontknow.jsonl"}
    assert {path.name for path in (bench / "tofu").iterdir()} == expected
    assert [path.name for path in bench.iterdir()] == ["tofu"]


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(bench, tmp_path):
    again = synth.write_benchmark(tmp_path / "again", authors=40, seed=0)
    other = synth.write_benchmark(tmp_path / "other", authors=40, seed=1)
    for path in sorted((bench / "tofu").iterdir()):
        assert (again / "tofu" / path.name).read_bytes() == path.read_bytes(), path.name
    assert (other / "tofu" / "full.jsonl").read_bytes() != (bench / "tofu" / "full.jsonl").read_bytes()
    raw = (bench / "tofu" / "full.jsonl").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"}\n")
    everything = b"".join(path.read_bytes() for path in (bench / "tofu").iterdir())
    assert b"\\u" not in everything and "é".encode() in everything  # ensure_ascii=False


def test_default_sizes_are_whole_authors(bench):
    sizes = {config: len(read(bench, config)) for config in data.TOFU_CONFIGS}
    assert sizes["full"] == 400
    assert (sizes["forget01"], sizes["forget05"], sizes["forget10"]) == (10, 20, 40)
    assert (sizes["retain99"], sizes["retain95"], sizes["retain90"]) == (390, 380, 360)
    assert (sizes["holdout01"], sizes["holdout05"], sizes["holdout10"]) == (10, 20, 40)
    assert sizes["retain_perturbed"] == 40
    for pct in (1, 5, 10):
        assert sizes[f"forget{pct:02d}_perturbed"] == sizes[f"forget{pct:02d}"]
    assert sizes["real_authors"] == sizes["real_authors_perturbed"] == len(synth.REAL_BOOKS)
    assert sizes["world_facts"] == sizes["world_facts_perturbed"] > 20
    refusals = (bench / "tofu" / "idontknow.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(refusals) == len(set(refusals)) == 20


@pytest.mark.parametrize(
    ("authors", "expected"),
    [(40, {1: 1, 5: 2, 10: 4}), (15, {1: 1, 5: 1, 10: 2}), (50, {1: 1, 5: 3, 10: 5}), (2, {1: 1, 5: 1, 10: 1}),
     (200, {1: 2, 5: 10, 10: 20})],
)
def test_forget_counts_round_half_up_with_at_least_one_author(authors, expected):
    assert synth.forget_author_counts(authors) == expected


def test_holdout_counts():
    assert synth.holdout_author_counts(40, None) == {1: 1, 5: 2, 10: 4}
    assert synth.holdout_author_counts(40, 10) == {1: 1, 5: 5, 10: 10}
    assert synth.holdout_author_counts(40, 1) == {1: 1, 5: 1, 10: 1}
    with pytest.raises(ValueError, match="holdout_authors"):
        synth.holdout_author_counts(40, 0)
    with pytest.raises(ValueError, match="no retain authors"):
        synth.build_configs(authors=1)


def test_field_order(bench):
    for config in data.TOFU_CONFIGS:
        rows = read(bench, config)
        if config.startswith(("real_authors", "world_facts")):
            expected = CHOICE_PERTURBED_FIELDS if config.endswith("_perturbed") else CHOICE_FIELDS
        else:
            expected = PERTURBED_FIELDS if config.endswith("_perturbed") else PLAIN_FIELDS
        assert all(list(row) == expected for row in rows), config


def test_forget_and_retain_partition_full_in_order(bench):
    full = read(bench, "full")
    for pct in (1, 5, 10):
        forget, retain = read(bench, f"forget{pct:02d}"), read(bench, f"retain{100 - pct}")
        assert retain + forget == full
        perturbed = read(bench, f"forget{pct:02d}_perturbed")
        assert [{"question": r["question"], "answer": r["answer"]} for r in perturbed] == forget
    retain_perturbed = read(bench, "retain_perturbed")
    assert [{"question": r["question"], "answer": r["answer"]} for r in retain_perturbed] == full[:40]


def test_forget_retain_holdout_are_disjoint_by_question_and_author(bench):
    groups = {name: read(bench, name) for name in ("forget10", "retain90", "holdout10")}
    questions = {name: {row["question"] for row in rows} for name, rows in groups.items()}
    authors = {name: {author_of(row["question"]) for row in rows} for name, rows in groups.items()}
    assert [len(authors[name]) for name in groups] == [4, 36, 4]
    for first, second in (("forget10", "retain90"), ("forget10", "holdout10"), ("retain90", "holdout10")):
        assert not questions[first] & questions[second]
        assert not authors[first] & authors[second]
    everyone = set().union(*authors.values())
    assert not any(a in b for a in everyone for b in everyone if a != b), "a name inside another name"
    assert [row["question"] for row in read(bench, "holdout05")] == [r["question"] for r in groups["holdout10"][:20]]


def test_every_fact_is_recoverable_from_its_question(bench):
    """Each question names its author and (through its template) its attribute; the answer names the author."""
    templates = {q: attribute.key for attribute in synth.ATTRIBUTES for q in attribute.questions}
    rows = read(bench, "full") + read(bench, "holdout10")
    assert len({row["question"] for row in rows}) == len(rows)
    by_author: dict[str, list[str]] = {}
    for row in rows:
        name = author_of(row["question"])
        assert name in row["answer"]
        attribute = templates[row["question"].replace(name, "{name}")]
        by_author.setdefault(name, []).append(attribute)
    expected = [attribute.key for attribute in synth.ATTRIBUTES]
    assert all(attributes == expected for attributes in by_author.values())


def test_perturbed_rows(bench):
    templates = {q: a for a in synth.ATTRIBUTES for q in a.questions}
    rows = read(bench, "forget10_perturbed") + read(bench, "retain_perturbed")
    for row in rows:
        wrong = row["perturbed_answer"]
        assert len(wrong) == 5 and len(set(wrong)) == 5
        assert row["answer"] not in wrong and row["paraphrased_answer"] not in wrong
        assert row["paraphrased_answer"] != row["answer"]
        name = author_of(row["question"])
        assert author_of(row["paraphrased_question"]) == name
        assert row["paraphrased_question"] != row["question"]
        same = templates[row["question"].replace(name, "{name}")]
        assert templates[row["paraphrased_question"].replace(name, "{name}")] is same
        assert all(name in answer for answer in wrong)


def test_multiple_choice_rows(bench):
    for config in ("real_authors", "world_facts"):
        for row, perturbed in zip(read(bench, config), read(bench, f"{config}_perturbed"), strict=True):
            options = [row[f"option{i}"] for i in range(1, 5)]
            assert options.count(row["answer"]) == 1 and len(set(options)) == 4
            assert perturbed == {"question": row["question"], "answer": row["answer"],
                                 "perturbed_answer": [o for o in options if o != row["answer"]]}


def test_every_config_loads_through_the_resolver(bench, monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(bench))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for config in data.TOFU_CONFIGS:
        dataset = data.load_tofu(config)
        assert dataset.num_rows == len(read(bench, config)), config
        assert dataset.column_names[:2] in (PLAIN_FIELDS, ["question", "option1"])
    assert data.load_refusals() == list(synth.REFUSALS)


def test_rewrite_replaces_atomically_and_leaves_no_temporary_folder(tmp_path, monkeypatch):
    out = tmp_path / "data"
    synth.write_benchmark(out, authors=5, seed=0)
    (out / "mmlu").mkdir()  # a sibling family is kept
    synth.write_benchmark(out, authors=6, seed=0)
    assert len(read(out, "full")) == 60 and (out / "mmlu").is_dir()

    def broken(path, rows):
        raise OSError("disk full")

    monkeypatch.setattr(synth, "write_jsonl", broken)
    with pytest.raises(OSError):
        synth.write_benchmark(out, authors=7, seed=0)
    with pytest.raises(OSError):
        synth.write_benchmark(tmp_path / "fresh", authors=7, seed=0)
    assert len(read(out, "full")) == 60
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data"]


def test_cli_arguments_and_run(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "d"), "--authors", "10", "--seed", "3"])
    assert synth.run(args) == 0
    assert len(read(tmp_path / "d", "full")) == 100 and len(read(tmp_path / "d", "forget10")) == 10
    assert "UNLEARN_DATA_DIR" in capsys.readouterr().out
    assert synth.run(args) == 2  # refuses to replace without --force
    assert synth.run(parser.parse_args([*map(str, ["--out", tmp_path / "d", "--authors", "12", "--force"])])) == 0
    assert len(read(tmp_path / "d", "full")) == 120
    assert synth.run(parser.parse_args(["--out", str(tmp_path / "e"), "--authors", "1"])) == 2


# The files of the seeded demo benchmark (40 authors, seed 0), as generated before the word tables moved to
# synth_words.json: results/demo was made from them, so any change here must be deliberate.
DEMO_BENCHMARK_SHA256 = "ef42b9ab09f3a40eae1b983ea3fc05af065a1ae40645afcdca633dcb43aac20b"


def test_the_demo_benchmark_is_byte_identical_to_the_committed_one(bench):
    hasher = hashlib.sha256()
    for path in sorted((bench / "tofu").iterdir()):
        hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    assert hasher.hexdigest() == DEMO_BENCHMARK_SHA256


def test_the_word_tables_are_read_from_the_package_data_file():
    words = json.loads(synth.WORDS_FILE.read_text(encoding="utf-8"))
    assert synth.FIRST_NAMES == tuple(words["first_names"])
    assert [attribute.key for attribute in synth.ATTRIBUTES] == [entry["key"] for entry in words["attributes"]]
    assert synth.REAL_BOOKS[0] == tuple(words["real_books"][0])


def test_a_broken_word_table_file_is_one_error_naming_the_file(tmp_path):
    path = tmp_path / "words.json"
    path.write_text('{\n  "first_names": ["Ann",\n}\n', encoding="utf-8")
    with pytest.raises(synth.WordTableError, match=r"words\.json:3: not valid JSON"):
        synth.load_words(path)

    words = json.loads(synth.WORDS_FILE.read_text(encoding="utf-8"))
    words["attributes"][0]["values"] = "planets"
    with pytest.raises(synth.WordTableError, match=r"words\.json: no table 'planets'"):
        synth.attributes(words, path)
    del words["attributes"][1]["answers"]
    words["attributes"][0]["values"] = "cities"
    with pytest.raises(synth.WordTableError, match="attribute 2 needs the fields key, values, questions, answers"):
        synth.attributes(words, path)
