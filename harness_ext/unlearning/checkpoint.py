"""Loading models, and writing checkpoints atomically (``harness_ext.io.atomic_folder``).

An interrupted or failed write leaves ``--out`` as it was (absent, empty, or the previous
checkpoint): the temporary folder is removed, and ``--out`` only ever appears complete.
A non-empty ``--out`` is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from harness_ext.io import atomic_folder
from harness_ext.unlearning.config import UnlearnError

CONTROL_FILE = "control.json"


def check_out(out, overwrite: bool) -> Path:
    """``out`` as a Path, after checking it may be written (call before any work is done)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UnlearnError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UnlearnError(f"--out {out} is not empty; pass --overwrite to replace it, or choose another folder")
    return out


def save_checkpoint(out: Path, model, tokenizer, record: dict) -> Path:
    """Weights (safetensors; an adapter for PEFT models), tokenizer and control.json, atomically."""

    def write(folder: Path) -> None:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / CONTROL_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    return atomic_folder(out, write)


def load_model(model, tokenizer=None, dtype: str = "auto"):
    """``(model, tokenizer, source)`` from a checkpoint path, or an in-memory model with its tokenizer.

    ``source`` is the path as given (recorded in control.json), or ``None`` for an in-memory model.
    """
    if isinstance(model, PreTrainedModel):
        if tokenizer is None:
            raise UnlearnError("an in-memory model needs its tokenizer: pass tokenizer=")
        return model, tokenizer, None
    if not isinstance(model, (str, Path)):
        raise UnlearnError(f"model must be a checkpoint path or a PreTrainedModel, got {type(model).__name__}")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
        if tokenizer is None or isinstance(tokenizer, (str, Path)):
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or model))
    except (OSError, ValueError) as error:
        raise UnlearnError(f"cannot load model {str(model)!r}: {error}") from None
    return loaded, tokenizer, str(model)
