"""Fingerprints of what determines a number: our code, the data it reads, and the model it scores.

A cached or stamped number is reused only when every ingredient is unchanged:

- :func:`code_fingerprint`: the source of ``unlearn_metrics``, ``unlearn_tasks`` (task YAMLs, hence
  their versions and the hub dataset ids, included) and ``harness_ext``, and the package version;
- :func:`data_fingerprint`: where the tasks' data comes from (``$UNLEARN_DATA_DIR``'s path, or the
  hub) and, for local data, the content of the folders those tasks read;
- :func:`content_hash`: the model's weights (names, dtypes, shapes, bytes) and its tokenizer
  (vocabulary, special tokens, BOS rule, chat template);
- the task configuration (task, metric, limit, metadata: convention, attack, …), which callers add.

Files are hashed once per process (source) or once per (path, size, mtime) (data).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from unlearn_tasks.datasource import local_data_dir

PACKAGE = "unlearn-bench"
CODE_PACKAGES = ("unlearn_metrics", "unlearn_tasks", "harness_ext")
#: Task-name prefix → the data folder (under ``$UNLEARN_DATA_DIR``) its tasks read; longest prefix first.
DATA_FAMILIES = (
    ("unlearn_tofu_", "tofu"),
    ("unlearn_fluency_", "tofu"),
    ("unlearn_muse_news", "muse/news"),
    ("unlearn_muse_books", "muse/books"),
    ("unlearn_mmlu", "mmlu"),
    ("unlearn_probe", "probes"),
    ("unlearn_wmdp", "wmdp"),
)
WHOLE_DATA_DIR = "."  # a task of no known family may read anything


def package_version() -> str:
    """The installed unlearn-bench version (``unknown`` when run from an uninstalled tree)."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def digest(value) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys; non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def code_fingerprint() -> str:
    """SHA-256 of our three packages' files (relative path + bytes) and the package version."""
    return digest([package_version(), _source_digest()])


@functools.cache
def _source_digest() -> str:
    hasher = hashlib.sha256()
    for package in CODE_PACKAGES:
        root = _package_folder(package)
        for path in sorted(_source_files(root)):
            hasher.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            hasher.update(path.read_bytes())
            hasher.update(b"\0")
    return hasher.hexdigest()


def _package_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed; install unlearn-bench (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations)))


def _source_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


def data_folders(tasks: list[str]) -> list[str]:
    """The folders under ``$UNLEARN_DATA_DIR`` that ``tasks`` read (``.``, the whole folder, for unknown ones)."""
    return sorted({_family(task) for task in tasks})


def _family(task: str) -> str:
    return next((folder for prefix, folder in DATA_FAMILIES if task.startswith(prefix)), WHOLE_DATA_DIR)


def data_fingerprint(tasks: list[str]) -> dict:
    """Where ``tasks`` read their data: ``{"source": <$UNLEARN_DATA_DIR path> | "hub", "folders", "content"}``.

    ``content`` (local data only) is the SHA-256 of the folders' files, relative path and bytes. For the
    hub, the dataset ids are in the code (see :func:`code_fingerprint`).
    """
    folders = data_folders(tasks)
    root = local_data_dir()
    if root is None:
        return {"source": "hub", "folders": folders}
    return {"source": str(root), "folders": folders, "content": _folders_digest(root, folders)}


def _folders_digest(root: Path, folders: list[str]) -> str:
    hasher = hashlib.sha256()
    for folder in folders:
        files = sorted(_source_files(root / folder)) if (root / folder).is_dir() else []
        for path in files:
            status = path.stat()
            hasher.update(f"{path.relative_to(root).as_posix()}\0".encode())
            hasher.update(_file_digest(str(path), status.st_size, status.st_mtime_ns).encode())
    return hasher.hexdigest()


@functools.cache
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes, memoised on (path, size, mtime) so a changed file is read again."""
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def content_hash(model, tokenizer) -> str:
    """SHA-256 of the weights (names, dtypes, shapes, bytes) and the tokenizer (vocabulary, specials, BOS rule,
    chat template)."""
    import torch

    hasher = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        hasher.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        hasher.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    probe = tokenizer("Question: x\nAnswer: y")["input_ids"]
    described = [sorted(tokenizer.get_vocab().items()), tokenizer.special_tokens_map, probe,
                 getattr(tokenizer, "chat_template", None)]
    hasher.update(json.dumps(described, sort_keys=True, default=str).encode())
    return hasher.hexdigest()


def number_provenance(tasks: list[str]) -> dict:
    """What determines a number of ``tasks`` besides the model and the task configuration: code and data."""
    return {"code": code_fingerprint(), "version": package_version(), "data": data_fingerprint(tasks)}
