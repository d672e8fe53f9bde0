"""Training data specs: ``tofu:<config>``, ``muse:<corpus>/<config>/<split>`` and ``file:PATH``.

Every spec gives a list of rows of one of two shapes:

- QA ``{question, answer}``: trained like TOFU (prompt masked, CE on the answer tokens);
- text ``{text}``: plain text, every token trained (MUSE and WMDP corpora), long texts cut into
  ``--max-length`` token chunks.

``muse:`` reads ``$UNLEARN_DATA_DIR/muse/<corpus>/<config>/<split>.json`` (one JSON list: objects,
or plain strings = texts) when ``UNLEARN_DATA_DIR`` is set, else the hub's ``muse-bench/MUSE-News``
or ``muse-bench/MUSE-Books`` (config, split). ``file:`` reads a user's JSON (one list) or JSON Lines
(``.jsonl``: one object per line), through the tasks' readers (``unlearn_tasks.datasource``). A malformed
row raises one DataError naming the file and line (hub rows: their number).
"""

from __future__ import annotations

from pathlib import Path

from unlearn_tasks.datasource import DataError, read_json_list, read_jsonl
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


def file_rows(path: Path) -> list[dict]:
    """The training rows of a user's JSON or JSON Lines file."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    rows = read_jsonl(path) if path.suffix == ".jsonl" else read_json_list(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    return [training_row(row.value, row.where) for row in rows]


def muse_rows(corpus: str, config: str, split: str) -> list[dict]:
    """A MUSE config/split as training rows, resolved as the MUSE tasks resolve it (local file, else the hub)."""
    return [training_row(row.value, row.where) for row in load_muse_split(corpus, config, split)]


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
