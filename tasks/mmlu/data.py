"""MMLU data: ``$UNLEARN_DATA_DIR/mmlu/{dev,test}/<subject>_{dev,test}.csv`` (header
``question,choice0..choice3,answer``) when that variable is set, else the hub's ``cais/mmlu``, which
lm-eval's own task reads. Both give the same documents; :func:`load_mmlu` is an lm-eval
``custom_dataset`` function (called with the task's metadata and ``dataset_kwargs``)."""

from __future__ import annotations

import datasets

from unlearn_tasks.datasource import DataError, local_data_dir, local_file, read_csv, require_fields

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
