"""``relearn``: fine-tune an unlearned checkpoint on a relearning set and see what comes back.

NLL on the answers (the tasks' prompt), AdamW at a constant learning rate, seeded — the unlearning
module's own training loop (``harness_ext.unlearning.api.finetune_model``). The relearning set
defaults to the forget set the checkpoint's control.json names (Wang et al. 2025 relearn on the full
TOFU set for one epoch: pass ``data="tofu:full"``). The input checkpoint is only read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from harness_ext.unlearning.checkpoint import CONTROL_FILE, check_out, load_model, save_checkpoint
from harness_ext.unlearning.config import UnlearnError

DEFAULTS = {"steps": None, "lr": 1e-5, "seed": 0, "batch_size": 8}


def relearned(model, tokenizer, rows, *, steps: int | None = None, lr: float = 1e-5, seed: int = 0, batch_size: int = 8):
    """A relearned copy of the in-memory float32 ``model``: ``steps`` optimiser steps on ``rows``
    (``tofu:<config>`` or dicts with question/answer), or one epoch when ``steps`` is None."""
    from harness_ext.unlearning.api import finetune_model

    return finetune_model(copy.deepcopy(model), rows, tokenizer=tokenizer, steps=steps, lr=lr, seed=seed, batch_size=batch_size)


def relearn(checkpoint, out, *, data=None, steps: int | None = None, lr: float = 1e-5, seed: int = 0,
            batch_size: int = 8, overwrite: bool = False) -> Path:
    """Write the relearned ``checkpoint`` to ``out`` (a normal checkpoint folder with control.json).

    ``data``: the relearning set, ``tofu:<config>`` or rows; default: the checkpoint's forget set.
    """
    out = check_out(out, overwrite)
    source = read_control(checkpoint)
    data = data if data is not None else forget_spec(checkpoint, source)
    model, tokenizer, _ = load_model(checkpoint)
    settings = {"steps": steps, "lr": lr, "seed": seed, "batch_size": batch_size}
    model = relearned(model, tokenizer, data, **settings)
    label = data if isinstance(data, str) else f"<{len(data)} in-memory rows>"
    record = {"attack": "relearn", "data": label, **settings, "model": str(checkpoint), "source": source}
    return save_checkpoint(out, model, tokenizer, record)


def read_control(checkpoint) -> dict:
    """The checkpoint's control.json, or {} (a plain Hugging Face folder); an unreadable folder is an error."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        raise UnlearnError(f"relearn: checkpoint folder not found: {checkpoint}")
    path = folder / CONTROL_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def forget_spec(checkpoint, control: dict) -> str:
    """The forget set a checkpoint was unlearned on, as recorded in its control.json."""
    spec = control.get("data", {}).get("forget")
    if not spec:
        raise UnlearnError(f"relearn: {checkpoint} records no forget set (control.json); pass the relearning data (data=tofu:<config>)")
    return spec
