"""The data resolver every task loader shares: local files under ``$UNLEARN_DATA_DIR`` when set, else the hub.

Each benchmark's loader (``unlearn_tasks.<benchmark>.data``) names its own files under
``$UNLEARN_DATA_DIR/<benchmark>/``; every path is absolute, so tasks work from any working directory.
The readers here return :class:`SourceRow` s, each with where it came from (``file:line``, or
``<hub dataset> row N``), and :func:`checked_rows` checks each row's documented fields and their types,
so that bad input is one :class:`DataError` naming the file and line, never a crash further on.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from unlearn_tasks.errors import UnlearnBenchError

DATA_DIR_ENV = "UNLEARN_DATA_DIR"


class DataError(UnlearnBenchError, ValueError):
    """Missing or malformed data; the message names the file (and line) and how to fix it."""


class SourceRow(NamedTuple):
    """One row as read, and where it is: ``path:line`` (its first line; JSON lists add ``(row N)``, as a
    list can sit on one line) or ``<hub dataset> row N``."""

    where: str
    value: object


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


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a leading byte-order mark dropped); bytes that are not UTF-8 name their line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _json(text: str, where: str, error_line: bool = False):
    """``json.loads`` of ``text``; malformed JSON (at its line with ``error_line``), a lone surrogate escape
    ("\\ud800", not Unicode text) or absurd nesting is a DataError naming ``where``."""
    try:
        value = json.loads(text)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as error:
        raise DataError(f"{where}{f':{error.lineno}' if error_line else ''}: malformed JSON ({error.msg})") from None
    except UnicodeEncodeError:
        raise DataError(f"{where}: a JSON string holds an unpaired surrogate escape (not Unicode text)") from None
    except ValueError as error:  # e.g. an integer longer than Python's 4300-digit limit
        raise DataError(f"{where}: unreadable JSON ({error})") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply") from None
    return value


def read_jsonl(path: Path) -> list[SourceRow]:
    """The objects of a JSON Lines file (blank lines skipped); anything else names its file and line."""
    rows = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if line.strip():
            row = SourceRow(f"{path}:{number}", _json(line, f"{path}:{number}"))
            if not isinstance(row.value, dict):
                raise DataError(f"{row.where}: expected a JSON object, got {describe(row.value)}")
            rows.append(row)
    return rows


def read_json_list(path: Path) -> list[SourceRow]:
    """The rows of a file holding one JSON list, each with the line it starts on and its number."""
    text = read_text(path)
    whole = _json(text, str(path), error_line=True)
    if not isinstance(whole, list):
        raise DataError(f"{path}: expected one JSON list of rows, got {describe(whole)}")
    decoder, rows = json.JSONDecoder(), []
    position = text.index("[") + 1
    line = text.count("\n", 0, position) + 1
    for number in range(1, len(whole) + 1):  # the text is valid JSON: each row is a value after a comma
        start = _past_separators(text, position)
        line += text.count("\n", position, start)
        value, position = decoder.raw_decode(text, start)
        rows.append(SourceRow(f"{path}:{line} (row {number})", value))
        line += text.count("\n", start, position)
    return rows


def _past_separators(text: str, position: int) -> int:
    while text[position] in " \t\r\n,":
        position += 1
    return position


def read_csv(path: Path) -> list[SourceRow]:
    """The rows of a CSV file with a header line, as dicts of strings (a short row's missing fields: None)."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    rows = []
    try:
        if reader.fieldnames is None:  # an empty file
            return rows
        start = reader.line_num + 1
        for row in reader:
            rows.append(SourceRow(f"{path}:{start}", row))
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({error})") from None
    return rows


def hub_rows(dataset: Iterable[dict], name: str) -> list[SourceRow]:
    """A hub dataset's rows, each named ``<name> row N`` (N from 1)."""
    return [SourceRow(f"{name} row {number}", dict(row)) for number, row in enumerate(dataset, start=1)]


@dataclass(frozen=True)
class FieldType:
    """What a documented field must hold, in words for the error message."""

    description: str
    accepts: Callable[[object], bool]


def _is_text(value) -> bool:
    return isinstance(value, str)


TEXT = FieldType("a non-empty string", lambda value: _is_text(value) and value.strip() != "")
ANY_TEXT = FieldType("a string", _is_text)
OBJECT = FieldType("an object", lambda value: isinstance(value, dict))
INDEX = FieldType("a non-negative integer", lambda value: type(value) is int and value >= 0)


def strings(count: int | None = None) -> FieldType:
    """A list of strings: exactly ``count`` of them, or at least one."""
    size_ok = (lambda size: size == count) if count is not None else (lambda size: size > 0)
    words = f"a list of {count} strings" if count is not None else "a non-empty list of strings"
    return FieldType(words, lambda value: isinstance(value, list) and size_ok(len(value)) and all(map(_is_text, value)))


def index_below(count: int) -> FieldType:
    """An integer from 0 to ``count - 1`` (booleans are not integers here)."""
    return FieldType(f"an integer from 0 to {count - 1}", lambda value: type(value) is int and 0 <= value < count)


def digit_below(count: int) -> FieldType:
    """A string holding a digit from 0 to ``count - 1`` (CSV cells, string labels on the hub)."""
    digits = [str(index) for index in range(count)]
    return FieldType(f"one of {', '.join(digits)}", lambda value: value in digits)


Schema = Mapping[str, FieldType]


JSON_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
              float: "a number"}


def describe(value) -> str:
    """A value as an error message shows it: its JSON type and, for scalars, the value (abridged)."""
    kind = "null" if value is None else JSON_KINDS.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)) or value is None:
        return kind
    shown = repr(value)
    return f"{kind} {shown[:60]}{'...' if len(shown) > 60 else ''}"


def check_row(row: SourceRow, schema: Schema) -> dict:
    """The row's documented fields (only those), each checked against ``schema``; else one DataError."""
    if not isinstance(row.value, dict):
        raise DataError(f"{row.where}: expected an object with fields {list(schema)}, got {describe(row.value)}")
    missing = [name for name in schema if row.value.get(name) is None]
    if missing:
        raise DataError(f"{row.where}: missing field(s) {missing}")
    for name, field_type in schema.items():
        value = row.value[name]
        if not field_type.accepts(value):
            raise DataError(f"{row.where}: field {name!r} must be {field_type.description}, got {describe(value)}")
    return {name: row.value[name] for name in schema}


def checked_rows(rows: list[SourceRow], schema: Schema, source: str) -> list[dict]:
    """Every row through :func:`check_row`; no rows at all is an error naming ``source``."""
    if not rows:
        raise DataError(f"{source}: no rows")
    return [check_row(row, schema) for row in rows]
