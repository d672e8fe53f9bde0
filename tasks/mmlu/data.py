"""MMLU data: ``$UNLEARN_DATA_DIR/mmlu/{dev,test}/<subject>_{dev,test}.csv`` (header
``question,choice0..choice3,answer``) when that variable is set, else the hub's ``cais/mmlu``, which
lm-eval's own task reads. Both give the same documents, every row checked (:data:`MMLU_CSV_SCHEMA`,
:data:`MMLU_HUB_SCHEMA`); :func:`load_mmlu` is an lm-eval ``custom_dataset`` function (called with the
task's metadata and ``dataset_kwargs``)."""

from __future__ import annotations

import datasets

from unlearn_tasks.datasource import (
    ANY_TEXT, TEXT, DataError, checked_rows, digit_below, hub_rows, index_below, local_data_dir, local_file, read_csv,
    strings,
)

MMLU_HUB_PATH = "cais/mmlu"
MMLU_SPLITS = ("test", "dev")
MMLU_CSV_SCHEMA = {"question": TEXT, **{f"choice{index}": ANY_TEXT for index in range(4)}, "answer": digit_below(4)}
MMLU_HUB_SCHEMA = {"question": TEXT, "choices": strings(4), "answer": index_below(4)}
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


def mmlu_hub_arguments(subject: str, split: str) -> dict:
    """The exact arguments given to ``datasets.load_dataset`` for one MMLU subject and split."""
    return {"path": MMLU_HUB_PATH, "name": subject, "split": split}


def mmlu_documents(subject: str, split: str) -> list[dict]:
    """One subject's split as ``cais/mmlu`` documents: ``question``, ``subject``, ``choices`` (4), ``answer`` (0-3)."""
    if local_data_dir() is None:
        source = f"{MMLU_HUB_PATH} {subject}/{split}"
        dataset = datasets.load_dataset(**mmlu_hub_arguments(subject, split))
        rows = checked_rows(hub_rows(dataset, source), MMLU_HUB_SCHEMA, source)
    else:
        path = local_file("mmlu", f"{split}/{subject}_{split}.csv")
        rows = [_from_csv(row) for row in checked_rows(read_csv(path), MMLU_CSV_SCHEMA, str(path))]
    return [{"question": row["question"], "subject": subject, "choices": row["choices"], "answer": row["answer"]}
            for row in rows]


def _from_csv(row: dict) -> dict:
    choices = [row[f"choice{index}"] for index in range(4)]
    return {"question": row["question"], "choices": choices, "answer": int(row["answer"])}


def load_mmlu(subject: str, stride: int = 1, **kwargs) -> dict[str, datasets.Dataset]:
    """One MMLU subject: ``dev`` (the few-shot examples) and ``test``, of which every ``stride``-th row from the first.

    ``stride=10`` keeps test rows 0, 10, 20, ... (⌈n/10⌉ of n, at least one): the ``unlearn_mmlu_mini`` subset.
    """
    if subject not in MMLU_SUBJECTS:
        raise DataError(f"unknown MMLU subject {subject!r}; known: {', '.join(MMLU_SUBJECTS)}")
    if not isinstance(stride, int) or stride < 1:
        raise DataError(f"MMLU stride must be a positive integer, got {stride!r}")
    splits = {split: datasets.Dataset.from_list(mmlu_documents(subject, split)) for split in MMLU_SPLITS}
    splits["test"] = splits["test"].select(range(0, len(splits["test"]), stride))
    return splits
