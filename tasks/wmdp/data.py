"""WMDP questions: ``$UNLEARN_DATA_DIR/wmdp/<subject>.json`` when that variable is set, else the hub's
``cais/wmdp`` (config ``wmdp-<subject>``, split ``test``); rows ``{question, choices[4], answer}``."""

from __future__ import annotations

import datasets

from unlearn_tasks.datasource import DataError, local_data_dir, local_file, read_json_list

SUBJECTS = ("bio", "chem", "cyber")


def load_wmdp(subject: str, **_) -> dict[str, datasets.Dataset]:
    """One subject's questions as lm-eval's ``test`` split, with the hub's fields."""
    if subject not in SUBJECTS:
        raise DataError(f"unknown WMDP subject {subject!r}; known: {', '.join(SUBJECTS)}")
    if local_data_dir() is None:
        return {"test": datasets.load_dataset("cais/wmdp", f"wmdp-{subject}", split="test")}
    path = local_file("wmdp", f"{subject}.json")
    rows = read_json_list(path)
    for number, row in enumerate(rows):
        if not (isinstance(row, dict) and isinstance(row.get("question"), str) and isinstance(row.get("choices"), list)
                and len(row["choices"]) == 4 and row.get("answer") in (0, 1, 2, 3)):
            raise DataError(f"{path}: row {number} must be {{question, choices: [4 strings], answer: 0-3}}")
    return {"test": datasets.Dataset.from_list(rows)}
