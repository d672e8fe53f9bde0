"""lm-eval ``custom_dataset`` loaders: TOFU configs as task documents, through the one resolver.

lm-eval calls each loader as ``fn(**metadata, **dataset_kwargs)``; the task YAML names the configs.
:func:`~unlearn_tasks.tofu.data.load_tofu` has checked every row's fields for its config's shape.
"""

from __future__ import annotations

import itertools

import datasets

from unlearn_tasks.datasource import DataError
from unlearn_tasks.tofu.data import PARAPHRASED, load_tofu, tofu_schema

UTILITY_SPLITS = {"retain": "retain_perturbed", "ra": "real_authors_perturbed", "wf": "world_facts_perturbed"}
DOCUMENT_FIELDS = ("split", "index", "question", "answer", "paraphrased_answer", "paraphrased_question", "perturbed_answer")


def _documents(config: str, split: str) -> list[dict]:
    """The rows of ``config`` with every document field (None where the config has none), tagged ``split``."""
    return [{field: row.get(field) for field in DOCUMENT_FIELDS} | {"split": split, "index": index}
            for index, row in enumerate(load_tofu(config))]


def tofu_forget_documents(config: str, **_metadata) -> dict[str, datasets.Dataset]:
    """A ``forgetXX_perturbed`` config: question, answer, paraphrased answer and question, 5 perturbed answers."""
    if tofu_schema(config) is not PARAPHRASED:
        raise DataError(f"the forget task needs a config with fields {list(PARAPHRASED)} (e.g. forget10_perturbed); "
                        f"{config!r} has {list(tofu_schema(config))}")
    return {"test": datasets.Dataset.from_list(_documents(config, "forget"))}


def tofu_utility_documents(**_metadata) -> dict[str, datasets.Dataset]:
    """``retain_perturbed`` + ``real_authors_perturbed`` + ``world_facts_perturbed``, tagged by split."""
    documents = []
    for split, config in UTILITY_SPLITS.items():
        documents += _documents(config, split)
    return {"test": datasets.Dataset.from_list(documents)}


def tofu_question_documents(config: str, split: str, **_metadata) -> dict[str, datasets.Dataset]:
    """The questions (and answers) of one TOFU config, tagged ``split``: the fluency tasks' documents."""
    return {"test": datasets.Dataset.from_list(_documents(config, split))}


def tofu_membership_documents(forget: str, holdout: str, **_metadata) -> dict[str, datasets.Dataset]:
    """Members (``forget``, e.g. ``forget01``) and non-members (``holdout``, e.g. ``holdout01``), interleaved.

    Order: forget 0, holdout 0, forget 1, holdout 1, ... (the longer config's tail last), so that
    ``--limit 2n`` keeps n members and n non-members and an AUC can still be computed.
    ``member`` is True for the forget documents.
    """
    members = [doc | {"member": True} for doc in _documents(forget, "forget")]
    nonmembers = [doc | {"member": False} for doc in _documents(holdout, "holdout")]
    pairs = itertools.zip_longest(members, nonmembers)
    return {"test": datasets.Dataset.from_list([doc for pair in pairs for doc in pair if doc is not None])}
