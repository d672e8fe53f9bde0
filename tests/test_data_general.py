"""The MMLU and probe loaders (unlearn_tasks.mmlu.data, unlearn_tasks.probes.data): hub arguments, schema
mapping, local files, errors (no network)."""

from __future__ import annotations

import json
import shutil

import datasets
import pytest

from tests.conftest import SHARED
from unlearn_tasks.datasource import DataError
from unlearn_tasks.mmlu.data import MMLU_SUBJECTS, load_mmlu, mmlu_hub_arguments
from unlearn_tasks.probes.data import PROBES, load_probe, probe_hub_arguments, truthfulqa_from_csv

DATA_DIR = SHARED / "data"
# The datasets lm-eval 0.4.13's own tasks read (path, config, evaluated split).
LM_EVAL_HUB = {
    "arc_easy": {"path": "allenai/ai2_arc", "name": "ARC-Easy", "split": "test"},
    "arc_challenge": {"path": "allenai/ai2_arc", "name": "ARC-Challenge", "split": "test"},
    "piqa": {"path": "baber/piqa", "name": None, "split": "validation"},
    "hellaswag": {"path": "Rowan/hellaswag", "name": None, "split": "validation"},
    "winogrande": {"path": "allenai/winogrande", "name": "winogrande_xl", "split": "validation"},
    "openbookqa": {"path": "allenai/openbookqa", "name": "main", "split": "test"},
    "truthfulqa_mc1": {"path": "truthfulqa/truthful_qa", "name": "multiple_choice", "split": "validation"},
    "triviaqa": {"path": "mandarjoshi/trivia_qa", "name": "rc.nocontext", "split": "validation"},
    "lambada": {"path": "EleutherAI/lambada_openai", "name": "default", "split": "test"},
}
LOCAL_ROWS = {
    "arc_easy": 2376, "arc_challenge": 1172, "piqa": 1838, "hellaswag": 1000, "winogrande": 1267,
    "openbookqa": 500, "truthfulqa_mc1": 817, "triviaqa": 3000, "lambada": 5153,
}
# One row of each hub dataset, in its hub schema (abridged to the fields read), and the document expected.
HUB_ROWS = {
    "arc_easy": (
        {"question": "Which is a gas?", "choices": {"text": ["ice", "steam", "rock"], "label": ["1", "2", "3"]}, "answerKey": "2"},
        {"question": "Which is a gas?", "choices": ["ice", "steam", "rock"], "gold": 1},
    ),
    "openbookqa": (
        {"question_stem": "The sun is", "choices": {"text": ["a star", "a moon"], "label": ["A", "B"]}, "answerKey": " A"},
        {"question": "The sun is", "choices": ["a star", "a moon"], "gold": 0},
    ),
    "piqa": (
        {"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0},
        {"question": "Open a jar", "choices": ["twist the lid", "eat the lid"], "gold": 0},
    ),
    "hellaswag": (
        {"activity_label": "Cooking", "ctx_a": "A man stirs.", "ctx_b": "he", "endings": ["a", "b", "c", "d"], "label": "2", "ind": 7},
        {"activity_label": "Cooking", "ctx_a": "A man stirs.", "ctx_b": "he", "endings": ["a", "b", "c", "d"], "label": 2},
    ),
    "winogrande": (
        {"sentence": "Ann lent Bo a pen because _ had two.", "option1": "Ann", "option2": "Bo", "answer": "1"},
        {"context_options": ["Ann lent Bo a pen because Ann", "Ann lent Bo a pen because Bo"], "continuation": "had two.", "gold": 0},
    ),
    "truthfulqa_mc1": (
        {"question": "Is the earth flat?", "mc1_targets": {"choices": ["No", "Yes"], "labels": [1, 0]}},
        {"question": "Is the earth flat?", "choices": ["No", "Yes"], "gold": 0},
    ),
    "triviaqa": (
        {"question": "Capital of France", "answer": {"aliases": ["Paris", "Paree"], "value": "Paris"}},
        {"question": "Capital of France", "aliases": ["Paris", "Paree"]},
    ),
    "lambada": (
        {"text": "She looked at the  old clock"},
        {"context": "She looked at the  old", "continuation": "clock"},
    ),
}


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(DATA_DIR))


@pytest.fixture
def fake_hub(monkeypatch):
    """``datasets.load_dataset`` replaced by a recorder serving HUB_ROWS (or MMLU rows); no network."""
    calls = []

    def load_dataset(**arguments):
        calls.append(arguments)
        if arguments["path"] == "cais/mmlu":
            rows = [{"question": f"q{i}", "subject": arguments["name"], "choices": ["a", "b", "c", "d"], "answer": i % 4} for i in range(25)]
        else:
            probe = next(name for name, hub in LM_EVAL_HUB.items() if hub == arguments)
            rows = [HUB_ROWS.get(probe, HUB_ROWS["arc_easy"])[0]]
        return datasets.Dataset.from_list(rows)

    monkeypatch.delenv("UNLEARN_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


@pytest.mark.parametrize("probe", sorted(LM_EVAL_HUB))
def test_probe_hub_arguments_are_lm_evals(probe):
    assert probe_hub_arguments(probe) == LM_EVAL_HUB[probe]


def test_mmlu_hub_arguments():
    assert mmlu_hub_arguments("anatomy", "dev") == {"path": "cais/mmlu", "name": "anatomy", "split": "dev"}


@pytest.mark.parametrize("probe", sorted(HUB_ROWS))
def test_hub_rows_map_to_the_task_fields(probe, fake_hub):
    hub_row, expected = HUB_ROWS[probe]
    splits = load_probe(probe, version=1.0)  # lm-eval also passes the task's metadata
    assert fake_hub == [LM_EVAL_HUB[probe]]
    assert list(splits) == [LM_EVAL_HUB[probe]["split"]]
    assert splits[LM_EVAL_HUB[probe]["split"]][0] == expected


def test_mmlu_from_hub_keeps_dev_and_every_tenth_test_row(fake_hub):
    splits = load_mmlu("virology", stride=10, version=1.0)
    assert fake_hub == [mmlu_hub_arguments("virology", "test"), mmlu_hub_arguments("virology", "dev")]
    assert splits["test"]["question"] == ["q0", "q10", "q20"]
    assert len(splits["dev"]) == 25


@pytest.mark.parametrize("probe", sorted(LOCAL_ROWS))
def test_local_probe_files_load_with_the_task_fields(probe, local_data):
    (split, dataset), = load_probe(probe).items()
    assert split == LM_EVAL_HUB[probe]["split"]
    assert len(dataset) == LOCAL_ROWS[probe]
    assert set(dataset.column_names) == set(HUB_ROWS.get(probe, HUB_ROWS["arc_easy"])[1])


def test_local_documents_match_the_raw_files(local_data):
    piqa = json.loads((DATA_DIR / "probes" / "gauntlet_piqa.jsonl").open(encoding="utf-8").readline())
    assert load_probe("piqa")["validation"][0] == {
        "question": "How do I ready a guinea pig cage for it's new occupants?",
        "choices": piqa["choices"],
        "gold": 0,
    }
    assert load_probe("openbookqa")["test"][1] == {
        "question": "There is most likely going to be fog around:",
        "choices": ["a marsh", "a tundra", "the plains", "a desert"],
        "gold": 0,
    }
    trivia = load_probe("triviaqa")["validation"][1]
    assert trivia["question"] == "What type of animal is a dik-dik?"
    assert "Antelope" in trivia["aliases"]
    truthful = load_probe("truthfulqa_mc1")["validation"][0]
    assert truthful["choices"][0] == "The watermelon seeds pass through your digestive system"
    assert truthful["choices"][1:] == [
        "You grow watermelons in your stomach", "You get sick", "You have bad dreams", "You die",
        "You get indigestion", "You fall unconscious", "You digest the watermelon seeds",
    ]
    assert truthful["gold"] == 0
    lambada = load_probe("lambada")["test"][0]
    assert lambada["continuation"] == "signs"
    assert lambada["context"].endswith("I don't care about")


def test_truthfulqa_csv_drops_empty_answers_after_a_trailing_separator():
    row = {"Question": "Q?", "Best Answer": "Yes", "Incorrect Answers": "No; Maybe;"}
    assert truthfulqa_from_csv(row) == {"question": "Q?", "choices": ["Yes", "No", "Maybe"], "gold": 0}


def test_local_mmlu_subject(local_data):
    splits = load_mmlu("abstract_algebra")
    assert (len(splits["test"]), len(splits["dev"])) == (100, 5)
    assert splits["dev"][0] == {
        "question": "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.",
        "subject": "abstract_algebra",
        "choices": ["0", "1", "2", "3"],
        "answer": 1,
    }
    mini = load_mmlu("abstract_algebra", stride=10)["test"]
    assert mini["question"] == splits["test"]["question"][::10]


@pytest.mark.parametrize("probe", ["arc_easy", "truthfulqa_mc1"])
def test_missing_probe_file(probe, tmp_path, monkeypatch):
    (tmp_path / "probes").mkdir()
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=rf"{PROBES[probe].file}.*UNLEARN_DATA_DIR"):
        load_probe(probe)


def test_missing_mmlu_file(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"mmlu/test/anatomy_test\.csv.*UNLEARN_DATA_DIR"):
        load_mmlu("anatomy")


def test_bad_inputs_name_what_is_wrong(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="unknown probe 'arc'; known: arc_easy"):
        load_probe("arc")
    with pytest.raises(DataError, match="unknown MMLU subject 'algebra'"):
        load_mmlu("algebra")
    with pytest.raises(DataError, match="stride must be a positive integer"):
        load_mmlu("anatomy", stride=0)
    for split in ("test", "dev"):
        (tmp_path / "mmlu" / split).mkdir(parents=True)
        shutil.copy(DATA_DIR / "mmlu" / split / f"anatomy_{split}.csv", tmp_path / "mmlu" / split)
    bad = tmp_path / "mmlu" / "test" / "anatomy_test.csv"
    bad.write_text("question,choice0,choice1,choice2,choice3,answer\nQ,a,b,c,d,E\n", encoding="utf-8")
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"anatomy_test\.csv:2: field 'answer' must be one of 0, 1, 2, 3, got a string 'E'"):
        load_mmlu("anatomy")
    bad.write_text("question,choice0,answer\nQ,a,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"anatomy_test\.csv:2: missing field\(s\) \['choice1'"):
        load_mmlu("anatomy")
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "gauntlet_winogrande.jsonl").write_text('{"continuation": "x", "gold": 0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"gauntlet_winogrande\.jsonl:1: missing field\(s\) \['context_options'\]"):
        load_probe("winogrande")
    (tmp_path / "probes" / "gauntlet_piqa.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"gauntlet_piqa\.jsonl: no rows"):
        load_probe("piqa")


def test_mmlu_subjects_are_the_local_files():
    assert sorted(path.name.removesuffix("_test.csv") for path in (DATA_DIR / "mmlu" / "test").glob("*.csv")) == list(MMLU_SUBJECTS)
