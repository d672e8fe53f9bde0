"""HellaSwag's document cleaning, as lm-eval's hellaswag task does it (the YAML's ``process_docs``)."""

from __future__ import annotations

import re

import datasets

BRACKETED = re.compile(r"\[.*?\]")


def clean_hellaswag_text(text: str) -> str:
    """Strip, turn WikiHow's `` [title]`` into a sentence break, drop other ``[...]`` markers, halve double spaces.

    >>> clean_hellaswag_text(" How to cook [title] Boil water. [step] Add rice.  Wait ")
    'How to cook. Boil water. Add rice. Wait'
    """
    text = text.strip().replace(" [title]", ". ")
    return BRACKETED.sub("", text).replace("  ", " ")


def hellaswag_document(doc: dict) -> dict:
    """``query`` = "<activity>: <ctx_a> <Ctx_b>", the cleaned ``choices`` and the ``gold`` index."""
    context = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
    return {
        "query": clean_hellaswag_text(doc["activity_label"] + ": " + context),
        "choices": [clean_hellaswag_text(ending) for ending in doc["endings"]],
        "gold": int(doc["label"]),
    }


def process_hellaswag(dataset: datasets.Dataset) -> datasets.Dataset:
    """lm-eval ``process_docs``: every document through :func:`hellaswag_document`."""
    return dataset.map(hellaswag_document)
