"""lm-eval ``custom_dataset`` loaders for the membership-inference and fluency tasks, through the one resolver.

lm-eval calls each loader as ``fn(**metadata, **dataset_kwargs)``; the task YAML names the configs.
Every document has ``split``, ``index`` (its position in that config), ``question`` and ``answer``,
like the TOFU tasks' documents, so the TOFU task machinery (one request plan per document) serves them.
"""

from __future__ import annotations

import itertools

import datasets

from harness_ext.data import DataError, load_tofu

QUESTION_FIELDS = ("question", "answer")


def _question_documents(config: str, split: str, **extra) -> list[dict]:
    rows = load_tofu(config)
    documents = []
    for index, row in enumerate(rows):
        missing = [field for field in QUESTION_FIELDS if not row.get(field)]
        if missing:
            raise DataError(f"TOFU config {config!r}, row {index + 1}: missing field(s) {missing}")
        documents.append({"split": split, "index": index, "question": row["question"], "answer": row["answer"], **extra})
    if not documents:
        raise DataError(f"TOFU config {config!r} has no rows")
    return documents


def tofu_question_documents(config: str, split: str, **_metadata) -> dict[str, datasets.Dataset]:
    """The questions (and answers) of one TOFU config, tagged ``split``: the fluency tasks' documents."""
    return {"test": datasets.Dataset.from_list(_question_documents(config, split))}


def tofu_membership_documents(forget: str, holdout: str, **_metadata) -> dict[str, datasets.Dataset]:
    """Members (``forget``, e.g. ``forget01``) and non-members (``holdout``, e.g. ``holdout01``), interleaved.

    Order: forget 0, holdout 0, forget 1, holdout 1, ... (the longer config's tail last), so that
    ``--limit 2n`` keeps n members and n non-members and an AUC can still be computed.
    ``member`` is True for the forget documents.
    """
    members = _question_documents(forget, "forget", member=True)
    nonmembers = _question_documents(holdout, "holdout", member=False)
    pairs = itertools.zip_longest(members, nonmembers)
    documents = [document for pair in pairs for document in pair if document is not None]
    return {"test": datasets.Dataset.from_list(documents)}
