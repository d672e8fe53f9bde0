"""The data resolver every task loader shares: local files under ``$UNLEARN_DATA_DIR`` when set, else the hub.

Each benchmark's loader (``unlearn_tasks.<benchmark>.data``) names its own files under
``$UNLEARN_DATA_DIR/<benchmark>/``; every path is absolute, so tasks work from any working directory.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from unlearn_tasks.errors import UnlearnBenchError

DATA_DIR_ENV = "UNLEARN_DATA_DIR"


class DataError(UnlearnBenchError, ValueError):
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


def read_json_list(path: Path) -> list:
    """The rows of a file holding one JSON list."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected one JSON list of rows, got {type(rows).__name__}")
    return rows


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV file with a header line, as dicts of strings."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def require_fields(rows: list[dict], fields: tuple[str, ...], source: str) -> None:
    """Raise a DataError naming the first row that lacks one of ``fields``."""
    for number, row in enumerate(rows, start=1):
        missing = [field for field in fields if field not in row]
        if missing:
            raise DataError(f"{source}:{number}: missing field(s) {missing}")
