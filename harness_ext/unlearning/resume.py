"""Resumable training: a resume state written every N optimiser steps beside the output, and picked up again.

With ``save_every=N`` (``--save-every N``), ``finetune`` and ``unlearn`` write ``<out>.resume/`` after
every N-th optimiser step, atomically (``harness_ext.io.atomic_folder``: the previous state or the
new one, never half of one):

- ``state.pt``: the trained parameters (all weights, RMU's chosen layers, or the LoRA adapter), the
  AdamW and learning-rate schedule states, fp16's gradient scaler, the random states (Python, NumPy,
  torch CPU and CUDA) and the control's state (early stopping's measurements and kept weights);
- ``resume.json``: the step, the epoch and batch within it, and the run's identity (:func:`run_identity`).

A rerun of the same command finds the state, replays the data loader up to the saved step (so the
shuffles and forget/retain pairings are rebuilt exactly, without training), loads the state and goes
on: the result equals an uninterrupted run's. A state whose identity differs from the rerun's (model,
data, method, hyper-parameters, control, package version) is refused with one error naming the
differences. The folder is deleted once ``--out`` is written. Under ``accelerate launch`` the main
process writes the state and every process restores the main process's random states.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy
import torch

from harness_ext import provenance
from harness_ext.io import atomic_folder, atomic_write_json, recover_folder
from harness_ext.unlearning.config import UnlearnError, as_record

RESUME_SUFFIX = ".resume"
STATE_FILE = "state.pt"
RECORD_FILE = "resume.json"


def resume_folder(out: Path) -> Path:
    """``<out>.resume``, the sibling folder of ``out``'s resume state."""
    return Path(out).with_name(Path(out).name + RESUME_SUFFIX)


def run_identity(command: str, config, model, tokenizer, data: dict[str, list], **settings) -> dict:
    """What must match for a saved state to be resumed: the command, its hyper-parameters and ``settings``
    (method, control, …), the starting model's content, the training rows, and the package version."""
    return {
        "command": command, "hyperparameters": as_record(config), **settings,
        "model": provenance.content_hash(model, tokenizer),
        "data": {role: provenance.digest(rows) for role, rows in data.items()},
        "version": provenance.package_version(),
    }


def checkpoints_for(out: Path, every: int | None, command: str, config, model, tokenizer, data: dict, **settings):
    """The run's :class:`Checkpoints` every ``every`` steps, or None (``every`` None: no resume state)."""
    if every is None:
        return None
    return Checkpoints(out, every, run_identity(command, config, model, tokenizer, data, **settings))


def rng_states() -> dict:
    """Python's, NumPy's and torch's (CPU and every CUDA device's) random states, as tensors and plain values."""
    kind, keys, position, has_gauss, cached = numpy.random.get_state()
    return {
        "python": random.getstate(), "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict) -> None:
    kind, keys, position, has_gauss, cached = states["numpy"]
    numpy.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, cached))
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def differences(saved: dict, now: dict) -> list[str]:
    """``name: saved → now`` for each top-level (and hyper-parameter) entry that differs."""
    found = []
    for name in sorted(saved.keys() | now.keys()):
        before, after = saved.get(name), now.get(name)
        if isinstance(before, dict) and isinstance(after, dict) and name == "hyperparameters":
            found += [f"{name}.{entry}" for entry in differences(before, after)]
        elif before != after:
            found.append(f"{name}: {before!r} → {after!r}")
    return found


class Checkpoints:
    """The resume state of one run: saved by :meth:`after_step`, loaded by :meth:`restore`."""

    def __init__(self, out: Path, every: int, identity: dict):
        if every < 1:
            raise UnlearnError(f"--save-every must be at least 1, got {every}")
        self.folder, self.every = resume_folder(out), every
        self.identity = json.loads(json.dumps(identity))  # as resume.json will hold it
        self.tracked: dict = {}  # name → object with state_dict() / load_state_dict()
        self.start_step = self._saved_step()

    def _saved_step(self) -> int:
        recover_folder(self.folder)
        record_path = self.folder / RECORD_FILE
        if not record_path.is_file():
            return 0
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise UnlearnError(f"{record_path}: damaged resume state ({error}); delete {self.folder} to start afresh") from None
        changed = differences(record["run"], self.identity)
        if changed:
            raise UnlearnError(
                f"{self.folder} holds the resume state (step {record['step']}) of a run with other settings: "
                f"{'; '.join(changed)}. Rerun the original command to resume it, or delete {self.folder} to start afresh"
            )
        return int(record["step"])

    def track(self, name: str, stateful) -> None:
        """Save and restore ``stateful.state_dict()`` with the run (e.g. a control's measurements)."""
        self.tracked[name] = stateful

    def after_step(self, step: int, batches_per_epoch: int, accelerator, model, optimizer, schedule) -> None:
        """Every ``every`` steps: write the resume state (main process), then wait for every process."""
        if step % self.every:
            return
        if accelerator.is_main_process:
            state = {
                "parameters": {name: parameter.detach().cpu() for name, parameter in trained_parameters(accelerator, model)},
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "rng": rng_states(),
                "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                "tracked": {name: stateful.state_dict() for name, stateful in self.tracked.items()},
            }
            position = {"step": step, "epoch": step // batches_per_epoch, "batch_in_epoch": step % batches_per_epoch}

            def write(folder: Path) -> None:
                torch.save(state, folder / STATE_FILE)
                atomic_write_json(folder / RECORD_FILE, {**position, "run": self.identity})

            atomic_folder(self.folder, write)
        accelerator.wait_for_everyone()

    @torch.no_grad()
    def restore(self, accelerator, model, optimizer, schedule) -> None:
        """Load the saved state into the prepared ``model``, ``optimizer``, ``schedule``, the tracked objects and RNGs."""
        state = torch.load(self.folder / STATE_FILE, map_location="cpu", weights_only=True)
        parameters = dict(trained_parameters(accelerator, model))
        if parameters.keys() != state["parameters"].keys():
            raise UnlearnError(f"{self.folder / STATE_FILE} does not hold this model's trained parameters; delete {self.folder}")
        for name, value in state["parameters"].items():
            parameters[name].copy_(value)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if state["scaler"] is not None:
            accelerator.scaler.load_state_dict(state["scaler"])
        for name, stateful in self.tracked.items():
            stateful.load_state_dict(state["tracked"][name])
        restore_rng_states(state["rng"])

    def discard(self, accelerator) -> None:
        """Delete the resume state (main process), once the output is written."""
        if accelerator.is_main_process:
            shutil.rmtree(self.folder, ignore_errors=True)


def trained_parameters(accelerator, model):
    """``(name, parameter)`` of the unwrapped model's parameters that train."""
    return [(name, parameter) for name, parameter in accelerator.unwrap_model(model).named_parameters() if parameter.requires_grad]
