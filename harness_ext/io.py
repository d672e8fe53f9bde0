"""Atomic file output: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
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
        _plain_mode(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _plain_mode(path: str, folder: bool = False) -> None:
    """Give a mkstemp/mkdtemp result (0600/0700) the mode a plain open()/mkdir() would give."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


def atomic_folder(out: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(folder)`` on a temporary sibling of ``out``, then put it at ``out`` in one rename.

    An existing ``out`` is moved aside first and deleted only after the new one is in place; a failure
    leaves ``out`` as it was and no temporary folder behind.
    """
    out = Path(out)
    created = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror}") from None
    try:
        _plain_mode(staging, folder=True)
        write(staging)
        _replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first: the folders this call made, now empty again
            folder.rmdir()
        raise
    return out


def _replace_folder(new: Path, out: Path) -> None:
    if not out.exists():
        os.rename(new, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, retired / out.name)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(retired / out.name, out)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as stream:
        stream.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
