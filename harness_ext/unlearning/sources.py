"""Training data specs: ``tofu:<config>``, ``muse:<corpus>/<config>/<split>`` and ``file:PATH``.

Every spec gives a list of rows of one of two shapes:

- QA ``{question, answer}``: trained like TOFU (prompt masked, CE on the answer tokens);
- text ``{text}``: plain text, every token trained (MUSE and WMDP corpora), long texts cut into
  ``--max-length`` token chunks.

``muse:`` reads ``$UNLEARN_DATA_DIR/muse/<corpus>/<config>/<split>.json`` (one JSON list: objects,
or plain strings = texts) when ``UNLEARN_DATA_DIR`` is set, else the hub's ``muse-bench/MUSE-News``
or ``muse-bench/MUSE-Books`` (config, split). ``file:`` reads a user's JSON (one list) or JSON Lines
(``.jsonl``: one object per line). A malformed row raises one DataError naming the file and line
(JSON Lines) or row (JSON lists).
"""

from __future__ import annotations

import json
from pathlib import Path

from unlearn_tasks.datasource import DataError, read_jsonl
from unlearn_tasks.muse.data import HUB as MUSE_HUB, load_muse_split
from unlearn_tasks.tofu.data import load_tofu, parse_data_spec

QA_FIELDS = ("question", "answer")
SPEC_FORMS = "tofu:<config>, muse:<corpus>/<config>/<split> (corpus: news, books) or file:PATH (.json or .jsonl)"


def training_row(row, where: str) -> dict:
    """``row`` as ``{question, answer}`` or ``{text}`` (a plain string is a text); anything else is an error."""
    if isinstance(row, str):
        row = {"text": row}
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object or string, got {type(row).__name__}")
    if all(isinstance(row.get(name), str) and row[name] for name in QA_FIELDS):
        return {"question": row["question"], "answer": row["answer"]}
    if isinstance(row.get("text"), str) and row["text"]:
        return {"text": row["text"]}
    raise DataError(f"{where}: a row needs non-empty string fields question and answer, or text; got fields {sorted(row)}")


def read_json_rows(path: Path) -> list[tuple[object, str]]:
    """``(row, where)`` pairs of a JSON list or JSON Lines file; ``where`` is ``file:line`` or ``file row N``."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if path.suffix == ".jsonl":
        return list(zip(read_jsonl(path), (f"{path}:{number}" for number in jsonl_line_numbers(path))))
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: malformed JSON ({error.msg})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected one JSON list of rows (or use .jsonl, one object per line), got {type(rows).__name__}")
    return [(row, f"{path} row {number}") for number, row in enumerate(rows, start=1)]


def jsonl_line_numbers(path: Path) -> list[int]:
    """The 1-based numbers of the non-blank lines (the rows :func:`read_jsonl` returns, in order)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [number for number, line in enumerate(lines, start=1) if line.strip()]


def file_rows(path: Path) -> list[dict]:
    """The training rows of a user's JSON or JSON Lines file."""
    return [training_row(row, where) for row, where in read_json_rows(path)]


def muse_rows(corpus: str, config: str, split: str) -> list[dict]:
    """A MUSE config/split as training rows, resolved as the MUSE tasks resolve it (local file, else the hub)."""
    rows = load_muse_split(corpus, config, split)
    source = f"{MUSE_HUB[corpus]} {config}/{split}"
    return [training_row(row, f"{source} row {number}") for number, row in enumerate(rows, 1)]


def parse_muse(name: str, spec: str) -> tuple[str, str, str]:
    parts = name.split("/")
    if len(parts) != 3 or not all(parts):
        raise DataError(f"data spec {spec!r}: expected muse:<corpus>/<config>/<split>, e.g. muse:news/raw/forget")
    if parts[0] not in MUSE_HUB:
        raise DataError(f"data spec {spec!r}: unknown MUSE corpus {parts[0]!r}; known: {', '.join(MUSE_HUB)}")
    return parts[0], parts[1], parts[2]


def load_training_rows(spec: str) -> list[dict]:
    """The rows a training data spec names (see the module docstring)."""
    family, _, name = spec.partition(":")
    if not name or family not in ("tofu", "muse", "file"):
        raise DataError(f"data spec {spec!r} must be one of {SPEC_FORMS}")
    if family == "tofu":
        _, config = parse_data_spec(spec)
        return [{"question": row["question"], "answer": row["answer"]} for row in load_tofu(config)]
    if family == "muse":
        return muse_rows(*parse_muse(name, spec))
    return file_rows(Path(name).expanduser())


def is_text(row: dict) -> bool:
    """Whether a training row is plain text (all tokens trained) rather than a question/answer pair."""
    return "text" in row and "question" not in row
