"""MUSE data: ``$UNLEARN_DATA_DIR/muse/<corpus>/<config>/<split>.json`` when that variable is set, else
the hub (``muse-bench/MUSE-News``, ``muse-bench/MUSE-Books``; same config and split names), and the
documents each MUSE task evaluates."""

from __future__ import annotations

import datasets

from unlearn_tasks.datasource import DataError, local_data_dir, local_file, read_json_list

HUB = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}


def load_muse_split(corpus: str, config: str, split: str) -> list:
    """One MUSE split as a list of rows (dicts, or plain strings for ``privleak`` and ``raw``)."""
    if corpus not in HUB:
        raise DataError(f"unknown MUSE corpus {corpus!r}; known: {', '.join(HUB)}")
    if local_data_dir() is not None:
        return read_json_list(local_file("muse", f"{corpus}/{config}/{split}.json"))
    rows = datasets.load_dataset(HUB[corpus], config, split=split)
    return [row["text"] if set(row) == {"text"} else dict(row) for row in rows]


def require_text_fields(rows: list, fields: tuple[str, ...], source: str) -> None:
    for number, row in enumerate(rows):
        if not isinstance(row, dict) or any(not isinstance(row.get(field), str) for field in fields):
            raise DataError(f"{source}: row {number} must be an object with string fields {', '.join(fields)}")


def _dataset(documents: list[dict]) -> dict[str, datasets.Dataset]:
    return {"test": datasets.Dataset.from_list(documents)}


def verbmem_documents(corpus: str, **_) -> dict[str, datasets.Dataset]:
    rows = load_muse_split(corpus, "verbmem", "forget")
    require_text_fields(rows, ("prompt", "gt"), f"MUSE {corpus} verbmem/forget")
    return _dataset([{"split": "forget", "index": i, "prompt": r["prompt"], "gt": r["gt"]} for i, r in enumerate(rows)])


def knowmem_documents(corpus: str, split: str, **_) -> dict[str, datasets.Dataset]:
    """``knowmem/<split>_qa`` with the in-context pairs of ``knowmem/<split>_qa_icl`` on every document."""
    rows = load_muse_split(corpus, "knowmem", f"{split}_qa")
    examples = load_muse_split(corpus, "knowmem", f"{split}_qa_icl")
    for name, part in ((f"{split}_qa", rows), (f"{split}_qa_icl", examples)):
        require_text_fields(part, ("question", "answer"), f"MUSE {corpus} knowmem/{name}")
    icl = [{"question": r["question"], "answer": r["answer"]} for r in examples]
    return _dataset([{"split": split, "index": i, "question": r["question"], "answer": r["answer"], "icl": icl}
                     for i, r in enumerate(rows)])


def privleak_documents(corpus: str, **_) -> dict[str, datasets.Dataset]:
    """Members (``privleak/forget``) and non-members (``privleak/holdout``), alternating, so that
    ``--limit 2n`` keeps n of each."""
    parts = {split: load_muse_split(corpus, "privleak", split) for split in ("forget", "holdout")}
    for split, texts in parts.items():
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str) or not text), None)
        if bad is not None:
            raise DataError(f"MUSE {corpus} privleak/{split}: row {bad} must be a non-empty string")
    documents = []
    for index in range(max(map(len, parts.values()))):
        for split, texts in parts.items():
            if index < len(texts):
                documents.append({"split": split, "index": index, "text": texts[index], "member": split == "forget"})
    return _dataset(documents)
