"""WMDP questions: ``$UNLEARN_DATA_DIR/wmdp/<subject>.json`` when that variable is set, else the hub's
``cais/wmdp`` (config ``wmdp-<subject>``, split ``test``); rows ``{question, choices[4], answer}``, each
checked (:data:`WMDP_SCHEMA`)."""

from __future__ import annotations

import datasets

from unlearn_tasks.datasource import (
    TEXT, DataError, checked_rows, hub_rows, index_below, local_data_dir, local_file, read_json_list, strings,
)

SUBJECTS = ("bio", "chem", "cyber")
WMDP_SCHEMA = {"question": TEXT, "choices": strings(4), "answer": index_below(4)}


def load_wmdp(subject: str, **_) -> dict[str, datasets.Dataset]:
    """One subject's questions as lm-eval's ``test`` split, with the hub's fields."""
    if subject not in SUBJECTS:
        raise DataError(f"unknown WMDP subject {subject!r}; known: {', '.join(SUBJECTS)}")
    if local_data_dir() is None:
        source = f"cais/wmdp wmdp-{subject}/test"
        rows = hub_rows(datasets.load_dataset("cais/wmdp", f"wmdp-{subject}", split="test"), source)
    else:
        source = local_file("wmdp", f"{subject}.json")
        rows = read_json_list(source)
    return {"test": datasets.Dataset.from_list(checked_rows(rows, WMDP_SCHEMA, str(source)))}
