"""The one data resolver: local files under ``$UNLEARN_DATA_DIR`` when set, else the Hugging Face hub.

Local layout (that of ``../shared/data``)::

    $UNLEARN_DATA_DIR/tofu/<config>.jsonl      one JSON object per line (TOFU's HF config names)
    $UNLEARN_DATA_DIR/tofu/idontknow.jsonl     one refusal string per line (plain text)

Every path is absolute, so tasks work from any working directory.
"""

from __future__ import annotations

import json
import os
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
