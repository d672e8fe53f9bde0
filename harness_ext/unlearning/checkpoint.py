"""Loading models, and writing checkpoints atomically (``harness_ext.io.atomic_folder``).

An interrupted or failed write leaves ``--out`` as it was (absent, empty, or the previous
checkpoint): the temporary folder is removed, and ``--out`` only ever appears complete (see
``atomic_folder`` for what a crash during the final swap leaves).
A non-empty ``--out`` is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from harness_ext.io import atomic_folder, recover_folder
from harness_ext.unlearning.config import MASTER_DTYPE, UnlearnError

CONTROL_FILE = "control.json"


def check_out(out, overwrite: bool) -> Path:
    """``out`` as a Path, after checking it may be written (call before any work is done).

    A previous checkpoint that a crash left aside (see ``harness_ext.io.recover_folder``) is restored first.
    """
    out = Path(out)
    recover_folder(out)
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


def check_master_weights(model) -> None:
    """Training and mixing need float32 weights; an in-memory bf16/fp16 model is refused with the fix."""
    dtypes = {parameter.dtype for parameter in model.parameters() if parameter.is_floating_point()}
    if dtypes - {torch.float32}:
        names = ", ".join(sorted(str(dtype).removeprefix("torch.") for dtype in dtypes))
        raise UnlearnError(
            f"the in-memory model has {names} weights; training and mixing keep float32 master weights "
            "(pure bf16 AdamW rounds most 1e-5 updates away): pass model.float() (and mixed_precision='bf16' to train in bf16)"
        )


def load_model(model, tokenizer=None, dtype: str = MASTER_DTYPE, device=None):
    """``(model, tokenizer, source)`` from a checkpoint path, or an in-memory float32 model with its tokenizer.

    A checkpoint loads with ``dtype`` weights (float32 by default: bf16 checkpoints are upcast) on
    ``device`` (default: where it loads, the CPU). ``source`` is the path as given (recorded in
    control.json), or ``None`` for an in-memory model.
    """
    if isinstance(model, PreTrainedModel):
        if tokenizer is None:
            raise UnlearnError("an in-memory model needs its tokenizer: pass tokenizer=")
        if dtype == MASTER_DTYPE:
            check_master_weights(model)
        return (model if device is None else model.to(device)), tokenizer, None
    if not isinstance(model, (str, Path)):
        raise UnlearnError(f"model must be a checkpoint path or a PreTrainedModel, got {type(model).__name__}")
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
        if tokenizer is None or isinstance(tokenizer, (str, Path)):
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer or model))
    except (OSError, ValueError) as error:
        raise UnlearnError(f"cannot load model {str(model)!r}: {error}") from None
    return (loaded if device is None else loaded.to(device)), tokenizer, str(model)
