"""Probe data: ``$UNLEARN_DATA_DIR/probes/<file>`` (the files named in :data:`PROBES`) when that
variable is set, else the hub dataset lm-eval's own task reads. Each probe's loader maps both to the
same document fields, so one task config serves both; :func:`load_probe` is an lm-eval
``custom_dataset`` function (called with the task's metadata and ``dataset_kwargs``).

Every row is checked twice: its source fields (local file or hub, :class:`RowFormat`) before it is mapped,
and the document after (:data:`DOCUMENTS`), so a bad row is one DataError naming its file and line (or
hub row), never a crash or a document the task cannot score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import datasets

from unlearn_tasks.datasource import (
    ANY_TEXT, INDEX, OBJECT, TEXT, DataError, FieldType, Schema, SourceRow, check_row, digit_below, hub_rows,
    index_below, local_data_dir, local_file, read_csv, read_jsonl, strings,
)

# What the task of each kind of probe reads; "gold" must also pick one of at least two choices.
MULTIPLE_CHOICE = {"question": ANY_TEXT, "choices": strings(), "gold": INDEX}
HELLASWAG = {"activity_label": ANY_TEXT, "ctx_a": ANY_TEXT, "ctx_b": ANY_TEXT, "endings": strings(4),
             "label": index_below(4)}
WINOGRANDE = {"context_options": strings(2), "continuation": ANY_TEXT, "gold": index_below(2)}
TRIVIAQA = {"question": TEXT, "aliases": strings()}
LAMBADA = {"context": ANY_TEXT, "continuation": TEXT}


def multiple_choice_document(question: str, choices: list[str], gold: int) -> dict:
    """The document of every multiple-choice probe: ``question``, ``choices``, ``gold`` (index of the right one)."""
    return {"question": question, "choices": list(choices), "gold": gold}


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
    """The HellaSwag fields the task reads (same names locally and on the hub), label as an integer."""
    return {**{key: row[key] for key in ("activity_label", "ctx_a", "ctx_b", "endings")}, "label": int(row["label"])}


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


def _triviaqa_from_local(row: dict) -> dict:
    return {"question": row["context"].removeprefix("Question: ").removesuffix("\nAnswer:"), "aliases": row["aliases"]}


@dataclass(frozen=True)
class RowFormat:
    """The fields a source's rows must have, and how a checked row becomes a document."""

    schema: Schema
    to_document: Callable[[dict], dict] = dict


@dataclass(frozen=True)
class ProbeSource:
    """Where one probe's documents come from: a local file and lm-eval's hub dataset, each mapped to ``document``."""

    file: str
    local: RowFormat
    hub: dict
    from_hub: RowFormat
    document: Schema


GAUNTLET = RowFormat({"query": TEXT, "choices": strings(), "gold": INDEX}, _gauntlet_multiple_choice)
LABELLED_HUB = {"choices": OBJECT, "answerKey": TEXT}  # ARC, OpenBookQA
ARC_HUB = RowFormat({"question": TEXT, **LABELLED_HUB}, lambda row: _labelled_choices(row["question"], row))
ONE_OR_TWO = FieldType("one of 1, 2", lambda value: value in ("1", "2"))
PROBES = {
    "arc_easy": ProbeSource(
        "gauntlet_arc_easy.jsonl", GAUNTLET, {"path": "allenai/ai2_arc", "name": "ARC-Easy", "split": "test"},
        ARC_HUB, MULTIPLE_CHOICE,
    ),
    "arc_challenge": ProbeSource(
        "gauntlet_arc_challenge.jsonl", GAUNTLET, {"path": "allenai/ai2_arc", "name": "ARC-Challenge", "split": "test"},
        ARC_HUB, MULTIPLE_CHOICE,
    ),
    "piqa": ProbeSource(
        "gauntlet_piqa.jsonl", GAUNTLET, {"path": "baber/piqa", "name": None, "split": "validation"},
        RowFormat({"goal": TEXT, "sol1": ANY_TEXT, "sol2": ANY_TEXT, "label": index_below(2)},
                lambda row: multiple_choice_document(row["goal"], [row["sol1"], row["sol2"]], row["label"])),
        MULTIPLE_CHOICE,
    ),
    "openbookqa": ProbeSource(
        "gauntlet_openbook_qa.jsonl", GAUNTLET, {"path": "allenai/openbookqa", "name": "main", "split": "test"},
        RowFormat({"question_stem": TEXT, **LABELLED_HUB}, lambda row: _labelled_choices(row["question_stem"], row)),
        MULTIPLE_CHOICE,
    ),
    "hellaswag": ProbeSource(
        "hellaswag_val_sample1000.jsonl", RowFormat(HELLASWAG, hellaswag_fields),
        {"path": "Rowan/hellaswag", "name": None, "split": "validation"},
        RowFormat({**HELLASWAG, "label": digit_below(4)}, hellaswag_fields), HELLASWAG,
    ),
    "winogrande": ProbeSource(
        "gauntlet_winogrande.jsonl", RowFormat(WINOGRANDE),
        {"path": "allenai/winogrande", "name": "winogrande_xl", "split": "validation"},
        RowFormat({"sentence": TEXT, "option1": TEXT, "option2": TEXT, "answer": ONE_OR_TWO}, winogrande_from_hub),
        WINOGRANDE,
    ),
    "truthfulqa_mc1": ProbeSource(
        "TruthfulQA.csv",
        RowFormat({"Question": TEXT, "Best Answer": TEXT, "Incorrect Answers": TEXT}, truthfulqa_from_csv),
        {"path": "truthfulqa/truthful_qa", "name": "multiple_choice", "split": "validation"},
        RowFormat({"question": TEXT, "mc1_targets": OBJECT}, lambda row: multiple_choice_document(
            row["question"], row["mc1_targets"]["choices"], row["mc1_targets"]["labels"].index(1))),
        MULTIPLE_CHOICE,
    ),
    "triviaqa": ProbeSource(
        "gauntlet_triviaqa_sm_sub.jsonl", RowFormat({"context": TEXT, "aliases": strings()}, _triviaqa_from_local),
        {"path": "mandarjoshi/trivia_qa", "name": "rc.nocontext", "split": "validation"},
        RowFormat({"question": TEXT, "answer": OBJECT},
                lambda row: {"question": row["question"], "aliases": row["answer"]["aliases"]}),
        TRIVIAQA,
    ),
    "lambada": ProbeSource(
        "gauntlet_lambada_openai.jsonl", RowFormat(LAMBADA),
        {"path": "EleutherAI/lambada_openai", "name": "default", "split": "test"},
        RowFormat({"text": TEXT}, _lambada_from_hub), LAMBADA,
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


def probe_document(row: SourceRow, row_format: RowFormat, document: Schema) -> dict:
    """One row as the probe's document: its fields checked, mapped, and the document checked."""
    fields = check_row(row, row_format.schema)
    try:
        mapped = row_format.to_document(fields)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:  # nested hub fields
        raise DataError(f"{row.where}: cannot be read as a document ({type(error).__name__}: {error})") from None
    checked = check_row(SourceRow(row.where, mapped), document)
    choices = checked.get("choices", checked.get("context_options"))
    if "gold" in checked and not (len(choices) >= 2 and checked["gold"] < len(choices)):
        count = len(choices)
        raise DataError(f"{row.where}: gold {checked['gold']} must pick one of at least 2 choices; there are {count}")
    return checked


def load_probe(probe: str, **kwargs) -> dict[str, datasets.Dataset]:
    """One probe set as ``{split: Dataset}`` (the split lm-eval's own task evaluates on)."""
    source = probe_source(probe)
    split = source.hub["split"]
    if local_data_dir() is None:
        name = " ".join(str(value) for value in source.hub.values() if value)
        rows, row_format = hub_rows(datasets.load_dataset(**probe_hub_arguments(probe)), name), source.from_hub
    else:
        name = local_file("probes", source.file)
        rows, row_format = (read_csv(name) if name.suffix == ".csv" else read_jsonl(name)), source.local
    if not rows:
        raise DataError(f"{name}: no rows")
    return {split: datasets.Dataset.from_list([probe_document(row, row_format, source.document) for row in rows])}
