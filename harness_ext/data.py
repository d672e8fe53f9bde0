"""The one data resolver: local files under ``$UNLEARN_DATA_DIR`` when set, else the Hugging Face hub.

Local layout (that of ``../shared/data``)::

    $UNLEARN_DATA_DIR/tofu/<config>.jsonl      one JSON object per line (TOFU's HF config names)
    $UNLEARN_DATA_DIR/tofu/idontknow.jsonl     one refusal string per line (plain text)

Every path is absolute, so tasks work from any working directory.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import datasets

DATA_DIR_ENV = "UNLEARN_DATA_DIR"
TOFU_HUB_PATH = "locuslab/TOFU"
TOFU_CONFIGS = (
    "full",
    "forget01", "forget05", "forget10",
    "forget01_perturbed", "forget05_perturbed", "forget10_perturbed",
    "retain90", "retain95", "retain99", "retain_perturbed",
    "real_authors", "real_authors_perturbed",
    "world_facts", "world_facts_perturbed",
    "holdout01", "holdout05", "holdout10",
)


class DataError(ValueError):
    """Missing or malformed data; the message names the file (and line) and how to fix it."""


def local_data_dir() -> Path | None:
    """``$UNLEARN_DATA_DIR`` as a path, or None when unset (then the hub is used)."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser().resolve() if value else None


def local_file(family: str, name: str) -> Path:
    """``$UNLEARN_DATA_DIR/<family>/<name>``; a clear error when it does not exist."""
    root = local_data_dir()
    if root is None:
        raise DataError(f"{DATA_DIR_ENV} is not set")
    path = root / family / name
    if not path.is_file():
        raise DataError(
            f"data file not found: {path} (from {DATA_DIR_ENV}={root}); "
            f"expected the layout $UNLEARN_DATA_DIR/{family}/{name}, or unset {DATA_DIR_ENV} to use the hub"
        )
    return path


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON Lines file; a malformed line raises a DataError naming file and line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: malformed JSON line ({error.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def require_fields(rows: list[dict], fields: tuple[str, ...], source: str) -> None:
    """Raise a DataError naming the first row that lacks one of ``fields``."""
    for number, row in enumerate(rows, start=1):
        missing = [field for field in fields if field not in row]
        if missing:
            raise DataError(f"{source}:{number}: missing field(s) {missing}")


def tofu_hub_arguments(config: str) -> dict:
    """The exact arguments given to ``datasets.load_dataset`` for a TOFU config from the hub."""
    return {"path": TOFU_HUB_PATH, "name": config, "split": "train"}


def load_tofu(config: str) -> datasets.Dataset:
    """One TOFU config as a Dataset: ``$UNLEARN_DATA_DIR/tofu/<config>.jsonl`` if set, else the hub."""
    if config not in TOFU_CONFIGS:
        raise DataError(f"unknown TOFU config {config!r}; known: {', '.join(TOFU_CONFIGS)}")
    if local_data_dir() is None:
        return datasets.load_dataset(**tofu_hub_arguments(config))
    path = local_file("tofu", f"{config}.jsonl")
    rows = read_jsonl(path)
    require_fields(rows, ("question", "answer"), str(path))
    return datasets.Dataset.from_list(rows)


def load_refusals() -> list[str]:
    """TOFU's refusal strings (``idontknow.jsonl``: plain text, one per line)."""
    if local_data_dir() is None:
        from huggingface_hub import hf_hub_download

        path = Path(hf_hub_download(TOFU_HUB_PATH, "idontknow.jsonl", repo_type="dataset"))
    else:
        path = local_file("tofu", "idontknow.jsonl")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    refusals = [line for line in lines if line]
    if not refusals:
        raise DataError(f"{path}: no refusal strings")
    return refusals


def parse_data_spec(spec: str) -> tuple[str, str]:
    """``"tofu:forget10"`` → ``("tofu", "forget10")``, checked against the known configs."""
    family, _, config = spec.partition(":")
    if family != "tofu" or not config:
        raise DataError(f"data spec {spec!r} must look like 'tofu:<config>' (e.g. tofu:forget10)")
    if config not in TOFU_CONFIGS:
        raise DataError(f"unknown TOFU config {config!r} in {spec!r}; known: {', '.join(TOFU_CONFIGS)}")
    return family, config


def load_spec(spec: str) -> datasets.Dataset:
    """The dataset a ``tofu:<config>`` spec names."""
    _, config = parse_data_spec(spec)
    return load_tofu(config)


# --- MMLU and the general-knowledge probes --------------------------------------------------------
# Local layout: $UNLEARN_DATA_DIR/mmlu/{dev,test}/<subject>_{dev,test}.csv and
# $UNLEARN_DATA_DIR/probes/<file> (files named in PROBES). Each loader gives the same document fields
# for the local files and for the hub dataset that lm-eval's own task reads, so one task config serves
# both. Loaders are lm-eval ``custom_dataset`` functions: called with the task's metadata and
# ``dataset_kwargs`` as keyword arguments, they return ``{split: Dataset}``.

MMLU_HUB_PATH = "cais/mmlu"
MMLU_SPLITS = ("test", "dev")
MMLU_CSV_FIELDS = ("question", "choice0", "choice1", "choice2", "choice3", "answer")
MMLU_SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge",
    "college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
    "college_medicine", "college_physics", "computer_security", "conceptual_physics",
    "econometrics", "electrical_engineering", "elementary_mathematics", "formal_logic",
    "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics",
    "high_school_physics", "high_school_psychology", "high_school_statistics",
    "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality",
    "international_law", "jurisprudence", "logical_fallacies", "machine_learning", "management",
    "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios",
    "nutrition", "philosophy", "prehistory", "professional_accounting", "professional_law",
    "professional_medicine", "professional_psychology", "public_relations", "security_studies",
    "sociology", "us_foreign_policy", "virology", "world_religions",
)


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV file with a header line, as dicts of strings."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def mmlu_hub_arguments(subject: str, split: str) -> dict:
    """The exact arguments given to ``datasets.load_dataset`` for one MMLU subject and split."""
    return {"path": MMLU_HUB_PATH, "name": subject, "split": split}


def mmlu_documents(rows: list[dict], subject: str, source: str) -> list[dict]:
    """MMLU CSV rows as ``cais/mmlu`` documents: ``question``, ``subject``, ``choices`` (4), ``answer`` (0-3)."""
    require_fields(rows, MMLU_CSV_FIELDS, source)
    documents = []
    for number, row in enumerate(rows, start=1):
        if row["answer"] not in ("0", "1", "2", "3"):
            raise DataError(f"{source}:{number}: answer {row['answer']!r} is not one of 0, 1, 2, 3")
        choices = [row[f"choice{index}"] for index in range(4)]
        documents.append({"question": row["question"], "subject": subject, "choices": choices, "answer": int(row["answer"])})
    return documents


def load_mmlu(subject: str, stride: int = 1, **kwargs) -> dict[str, datasets.Dataset]:
    """One MMLU subject: ``dev`` (the few-shot examples) and ``test``, of which every ``stride``-th row from the first.

    ``stride=10`` keeps test rows 0, 10, 20, ... (⌈n/10⌉ of n, at least one): the ``unlearn_mmlu_mini`` subset.
    """
    if subject not in MMLU_SUBJECTS:
        raise DataError(f"unknown MMLU subject {subject!r}; known: {', '.join(MMLU_SUBJECTS)}")
    if not isinstance(stride, int) or stride < 1:
        raise DataError(f"MMLU stride must be a positive integer, got {stride!r}")
    splits = {}
    for split in MMLU_SPLITS:
        if local_data_dir() is None:
            splits[split] = datasets.load_dataset(**mmlu_hub_arguments(subject, split))
        else:
            path = local_file("mmlu", f"{split}/{subject}_{split}.csv")
            documents = mmlu_documents(read_csv(path), subject, str(path))
            if not documents:
                raise DataError(f"{path}: no rows")
            splits[split] = datasets.Dataset.from_list(documents)
    splits["test"] = splits["test"].select(range(0, len(splits["test"]), stride))
    return splits


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
