"""MUSE data: ``$UNLEARN_DATA_DIR/muse/<corpus>/<config>/<split>.json`` when that variable is set, else
the hub (``muse-bench/MUSE-News``, ``muse-bench/MUSE-Books``; same config and split names), and the
documents each MUSE task evaluates, every row checked (objects with string fields, or non-empty texts)."""

from __future__ import annotations

import datasets

from unlearn_tasks.datasource import (
    TEXT, DataError, SourceRow, checked_rows, describe, local_data_dir, local_file, read_json_list,
)

HUB = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
VERBMEM = {"prompt": TEXT, "gt": TEXT}
KNOWMEM = {"question": TEXT, "answer": TEXT}


def load_muse_split(corpus: str, config: str, split: str) -> list[SourceRow]:
    """One MUSE split's rows (objects, or plain strings for ``privleak`` and ``raw``), each with where it is."""
    if corpus not in HUB:
        raise DataError(f"unknown MUSE corpus {corpus!r}; known: {', '.join(HUB)}")
    if local_data_dir() is not None:
        return read_json_list(local_file("muse", f"{corpus}/{config}/{split}.json"))
    rows = datasets.load_dataset(HUB[corpus], config, split=split)
    values = [row["text"] if set(row) == {"text"} else dict(row) for row in rows]
    source = f"{HUB[corpus]} {config}/{split}"
    return [SourceRow(f"{source} row {number}", value) for number, value in enumerate(values, start=1)]


def checked_split(corpus: str, config: str, split: str, schema: dict) -> list[dict]:
    """A split of objects, each with the ``schema``'s fields (those only)."""
    return checked_rows(load_muse_split(corpus, config, split), schema, f"MUSE {corpus} {config}/{split}")


def checked_texts(corpus: str, config: str, split: str) -> list[str]:
    """A split of plain texts; each must be a non-empty string."""
    rows = load_muse_split(corpus, config, split)
    if not rows:
        raise DataError(f"MUSE {corpus} {config}/{split}: no rows")
    for row in rows:
        if not isinstance(row.value, str) or not row.value.strip():
            raise DataError(f"{row.where}: expected a non-empty string, got {describe(row.value)}")
    return [row.value for row in rows]


def _dataset(documents: list[dict]) -> dict[str, datasets.Dataset]:
    return {"test": datasets.Dataset.from_list(documents)}


def verbmem_documents(corpus: str, **_) -> dict[str, datasets.Dataset]:
    rows = checked_split(corpus, "verbmem", "forget", VERBMEM)
    return _dataset([{"split": "forget", "index": i, **row} for i, row in enumerate(rows)])


def knowmem_documents(corpus: str, split: str, **_) -> dict[str, datasets.Dataset]:
    """``knowmem/<split>_qa`` with the in-context pairs of ``knowmem/<split>_qa_icl`` on every document."""
    rows = checked_split(corpus, "knowmem", f"{split}_qa", KNOWMEM)
    icl = checked_split(corpus, "knowmem", f"{split}_qa_icl", KNOWMEM)
    return _dataset([{"split": split, "index": i, **row, "icl": icl} for i, row in enumerate(rows)])


def privleak_documents(corpus: str, **_) -> dict[str, datasets.Dataset]:
    """Members (``privleak/forget``) and non-members (``privleak/holdout``), alternating, so that
    ``--limit 2n`` keeps n of each."""
    parts = {split: checked_texts(corpus, "privleak", split) for split in ("forget", "holdout")}
    documents = []
    for index in range(max(map(len, parts.values()))):
        for split, texts in parts.items():
            if index < len(texts):
                documents.append({"split": split, "index": index, "text": texts[index], "member": split == "forget"})
    return _dataset(documents)
