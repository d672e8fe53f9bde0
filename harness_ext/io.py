"""Atomic file output: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


class OutputError(OSError):
    """An output location that cannot be written."""


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: str = "w"):
    """A stream to a temporary file beside ``path``, renamed onto ``path`` only when the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror}") from None
    try:
        with os.fdopen(handle, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as stream:
            yield stream
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 → the mode a plain open() would give
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as stream:
        stream.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
