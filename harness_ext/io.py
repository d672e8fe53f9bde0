"""Atomic file and folder output: a reader sees the old file (folder) or the whole new one, never half of it."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import glob
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from unlearn_tasks.errors import UnlearnBenchError

RETIRED_PREFIX = ".{name}.old-"  # + pid: the old folder during a two-rename replacement
RENAME_EXCHANGE = 2  # renameat2 flag, linux/fs.h
AT_FDCWD = -100


class OutputError(UnlearnBenchError, OSError):
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
    """Call ``write(folder)`` on a temporary sibling of ``out``, then put it at ``out`` in place of any old one.

    A failure before the swap leaves ``out`` as it was and no temporary folder behind. The swap itself
    (see :func:`replace_folder`) is one atomic step on Linux; elsewhere, after a crash inside it, the
    previous ``out`` is restored by :func:`recover_folder`, which every call runs first.
    """
    out = Path(out)
    recover_folder(out)
    created = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror}") from None
    try:
        _plain_mode(staging, folder=True)
        write(staging)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # deepest first: the folders this call made, now empty again
            folder.rmdir()
        raise
    return out


def replace_folder(new: Path, out: Path) -> None:
    """Put folder ``new`` at ``out``, deleting the folder that was there.

    Guarantee: a reader sees the old ``out`` or the whole new one. On Linux the two are exchanged in
    one step (``renameat2(RENAME_EXCHANGE)``), so ``out`` never goes missing. Where that call is not
    available (other systems, some file systems) the old folder is renamed to ``.<name>.old-<pid>``
    and the new one onto ``out``: between these two renames ``out`` is briefly missing, and a crash
    there leaves the old copy to :func:`recover_folder`. A crash also leaves the new folder as a
    ``.<name>.partial-*`` sibling, which is safe to delete.
    """
    if not out.exists():
        os.rename(new, out)
    elif _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old folder
    else:
        _replace_by_renames(new, out)


def _replace_by_renames(new: Path, out: Path) -> None:
    retired = out.with_name(f"{RETIRED_PREFIX.format(name=out.name)}{os.getpid()}")
    shutil.rmtree(retired, ignore_errors=True)  # a stale copy of this pid: ``out`` exists, so it is garbage
    os.rename(out, retired)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(retired, out)
        raise
    shutil.rmtree(retired, ignore_errors=True)



def recover_folder(out: str | Path) -> None:
    """Finish an interrupted :func:`replace_folder`: restore the old ``out`` if it is missing, drop leftovers."""
    out = Path(out)
    retired = sorted(out.parent.glob(f"{glob.escape(RETIRED_PREFIX.format(name=out.name))}*"))
    if retired and not out.exists():
        os.rename(retired.pop(), out)
    for leftover in retired:
        shutil.rmtree(leftover, ignore_errors=True)


@functools.cache
def _renameat2():
    """glibc's ``renameat2`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
    return function


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically; False (nothing done) where the system or file system cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as stream:
        stream.write(text)
    return Path(path)


def atomic_write_json(path: str | Path, data) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
