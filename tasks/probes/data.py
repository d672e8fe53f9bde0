"""Probe data: ``$UNLEARN_DATA_DIR/probes/<file>`` (the files named in :data:`PROBES`) when that
variable is set, else the hub dataset lm-eval's own task reads. Each probe's loader maps both to the
same document fields, so one task config serves both; :func:`load_probe` is an lm-eval
``custom_dataset`` function (called with the task's metadata and ``dataset_kwargs``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets

from unlearn_tasks.datasource import DataError, local_data_dir, local_file, read_csv, read_jsonl, require_fields


def multiple_choice_document(question: str, choices: list[str], gold: int) -> dict:
    """The document of every multiple-choice probe: ``question``, ``choices``, ``gold`` (index of the right one)."""
    return {"question": question, "choices": list(choices), "gold": int(gold)}


def winogrande_from_hub(row: dict) -> dict:
    """``sentence`` with a blank ``_`` → the two contexts ending in each option, and the shared continuation."""
    sentence = row["sentence"]
    blank = sentence.index("_")
    options = [sentence[:blank] + row["option1"], sentence[:blank] + row["option2"]]
    return {"context_options": options, "continuation": sentence[blank + 1 :].strip(), "gold": int(row["answer"]) - 1}


def truthfulqa_from_csv(row: dict) -> dict:
    """mc1 from the official CSV: the Best Answer (gold, first) against the ``; ``-separated Incorrect Answers."""
    incorrect = [answer.strip() for answer in row["Incorrect Answers"].split(";") if answer.strip()]
    return multiple_choice_document(row["Question"], [row["Best Answer"], *incorrect], 0)


def hellaswag_fields(row: dict) -> dict:
    """The HellaSwag fields the task reads (same schema locally and on the hub), label as an integer."""
    return {**{key: row[key] for key in ("activity_label", "ctx_a", "ctx_b", "endings")}, "label": int(row["label"])}


@dataclass(frozen=True)
class ProbeSource:
    """Where one probe's documents come from: a local file and lm-eval's hub dataset, each mapped to the same fields."""

    file: str
    local_fields: tuple[str, ...]
    from_local: Callable[[dict], dict]
    hub: dict
    from_hub: Callable[[dict], dict]


def _gauntlet_multiple_choice(row: dict) -> dict:
    # The gauntlet files hold lm-eval's prompt pieces: "Question: <question>" (PIQA with a trailing newline).
    question = row["query"].removeprefix("Question: ").removesuffix("\n")
    return multiple_choice_document(question, row["choices"], row["gold"])


def _labelled_choices(question: str, row: dict) -> dict:
    # ARC and OpenBookQA on the hub: choices {text, label}, answerKey one of the labels (" A" occurs).
    choices = row["choices"]
    return multiple_choice_document(question, choices["text"], choices["label"].index(row["answerKey"].strip()))


def _lambada_from_hub(row: dict) -> dict:
    words = row["text"].split(" ")
    return {"context": " ".join(words[:-1]), "continuation": words[-1]}


GAUNTLET_MC_FIELDS = ("query", "choices", "gold")
PROBES = {
    "arc_easy": ProbeSource(
        "gauntlet_arc_easy.jsonl", GAUNTLET_MC_FIELDS, _gauntlet_multiple_choice,
        {"path": "allenai/ai2_arc", "name": "ARC-Easy", "split": "test"},
        lambda row: _labelled_choices(row["question"], row),
    ),
    "arc_challenge": ProbeSource(
        "gauntlet_arc_challenge.jsonl", GAUNTLET_MC_FIELDS, _gauntlet_multiple_choice,
        {"path": "allenai/ai2_arc", "name": "ARC-Challenge", "split": "test"},
        lambda row: _labelled_choices(row["question"], row),
    ),
    "piqa": ProbeSource(
        "gauntlet_piqa.jsonl", GAUNTLET_MC_FIELDS, _gauntlet_multiple_choice,
        {"path": "baber/piqa", "name": None, "split": "validation"},
        lambda row: multiple_choice_document(row["goal"], [row["sol1"], row["sol2"]], row["label"]),
    ),
    "openbookqa": ProbeSource(
        "gauntlet_openbook_qa.jsonl", GAUNTLET_MC_FIELDS, _gauntlet_multiple_choice,
        {"path": "allenai/openbookqa", "name": "main", "split": "test"},
        lambda row: _labelled_choices(row["question_stem"], row),
    ),
    "hellaswag": ProbeSource(
        "hellaswag_val_sample1000.jsonl", ("activity_label", "ctx_a", "ctx_b", "endings", "label"), hellaswag_fields,
        {"path": "Rowan/hellaswag", "name": None, "split": "validation"},
        hellaswag_fields,
    ),
    "winogrande": ProbeSource(
        "gauntlet_winogrande.jsonl", ("context_options", "continuation", "gold"),
        lambda row: {key: row[key] for key in ("context_options", "continuation", "gold")},
        {"path": "allenai/winogrande", "name": "winogrande_xl", "split": "validation"},
        winogrande_from_hub,
    ),
    "truthfulqa_mc1": ProbeSource(
        "TruthfulQA.csv", ("Question", "Best Answer", "Incorrect Answers"), truthfulqa_from_csv,
        {"path": "truthfulqa/truthful_qa", "name": "multiple_choice", "split": "validation"},
        lambda row: multiple_choice_document(
            row["question"], row["mc1_targets"]["choices"], row["mc1_targets"]["labels"].index(1)
        ),
    ),
    "triviaqa": ProbeSource(
        "gauntlet_triviaqa_sm_sub.jsonl", ("context", "aliases"),
        lambda row: {
            "question": row["context"].removeprefix("Question: ").removesuffix("\nAnswer:"),
            "aliases": list(row["aliases"]),
        },
        {"path": "mandarjoshi/trivia_qa", "name": "rc.nocontext", "split": "validation"},
        lambda row: {"question": row["question"], "aliases": list(row["answer"]["aliases"])},
    ),
    "lambada": ProbeSource(
        "gauntlet_lambada_openai.jsonl", ("context", "continuation"),
        lambda row: {"context": row["context"], "continuation": row["continuation"]},
        {"path": "EleutherAI/lambada_openai", "name": "default", "split": "test"},
        _lambada_from_hub,
    ),
}


def probe_source(probe: str) -> ProbeSource:
    """The registered source of ``probe``; an unknown name lists the known ones."""
    if probe not in PROBES:
        raise DataError(f"unknown probe {probe!r}; known: {', '.join(PROBES)}")
    return PROBES[probe]


def probe_hub_arguments(probe: str) -> dict:
    """The exact arguments given to ``datasets.load_dataset`` for a probe (those of lm-eval's own task)."""
    return dict(probe_source(probe).hub)


def load_probe(probe: str, **kwargs) -> dict[str, datasets.Dataset]:
    """One probe set as ``{split: Dataset}`` (the split lm-eval's own task evaluates on)."""
    source = probe_source(probe)
    split = source.hub["split"]
    if local_data_dir() is None:
        dataset = datasets.load_dataset(**probe_hub_arguments(probe))
        return {split: dataset.map(source.from_hub, remove_columns=dataset.column_names)}
    path = local_file("probes", source.file)
    rows = read_csv(path) if path.suffix == ".csv" else read_jsonl(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    require_fields(rows, source.local_fields, str(path))
    return {split: datasets.Dataset.from_list([source.from_local(row) for row in rows])}
