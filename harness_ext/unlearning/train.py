"""The one training loop, for fine-tuning and every unlearning method, through HF Accelerate.

The same code runs on a CPU, one GPU, or several under ``accelerate launch`` (DDP as configured
by ``accelerate config``); engines that shard the weights (FSDP, DeepSpeed ZeRO-3) are refused.
Weights stay float32 (the master copy AdamW updates); ``mixed_precision`` bf16/fp16 runs the forward
and backward passes under Accelerate's autocast.
Optimiser: AdamW, gradients clipped to ``max_grad_norm``; the learning rate is constant, or
``linear``: warm-up over ``warmup_epochs`` epochs from 0, then linear decay to 0 at the last step
(TOFU's schedule: one warm-up epoch), stepped once per optimiser step on every process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType
from tqdm.auto import tqdm
from transformers import get_scheduler

from harness_ext.unlearning.config import TrainConfig, UnlearnError
from harness_ext.unlearning.resume import Checkpoints


@dataclass
class Trained:
    """The loop's outcome: the prepared (possibly wrapped) model and the optimiser steps taken."""

    model: torch.nn.Module
    steps: int
    stopped_early: bool


def planned_steps(batches_per_epoch: int, config: TrainConfig) -> int:
    """``max_steps`` when set (cycling through the data as needed), else ``epochs`` passes."""
    return config.max_steps if config.max_steps is not None else config.epochs * batches_per_epoch


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The run's Accelerator: the device and processes ``accelerate launch`` chose, and the mixed precision.

    Refused (:func:`check_launch`) when ``accelerate launch`` set up FSDP or DeepSpeed ZeRO-3, or when
    the processes it started did not join one group.

    ``mixed_precision`` None keeps Accelerate's own setting (``accelerate launch --mixed_precision``,
    ``accelerate config``; else no). Accelerate keeps one mixed-precision setting per process, so a
    run asking for another one resets it (the process group, if any, is kept).
    """
    wanted = config.mixed_precision
    if wanted is not None and AcceleratorState._shared_state and AcceleratorState().mixed_precision != wanted:
        AcceleratorState._reset_state()
    accelerator = Accelerator(mixed_precision=wanted)
    check_launch(accelerator)
    return accelerator


def sharding_engine(accelerator) -> str | None:
    """``"FSDP"`` or ``"DeepSpeed ZeRO-3"`` when the accelerator shards the weights across processes, else None."""
    if accelerator.distributed_type == DistributedType.FSDP:
        return "FSDP"
    if accelerator.distributed_type == DistributedType.DEEPSPEED and accelerator.deepspeed_plugin.zero_stage == 3:
        return "DeepSpeed ZeRO-3"
    return None


def check_launch(accelerator, environ=os.environ) -> None:
    """Refuse FSDP and DeepSpeed ZeRO-3 (the save, resume states and controls read full weights in one
    process), and launched processes that did not join one group (each would train on all the data and
    write the same output)."""
    launched = int(environ.get("WORLD_SIZE", "1"))
    if launched > accelerator.num_processes:
        raise UnlearnError(
            f"{launched} processes were launched (WORLD_SIZE) but this one runs alone ({accelerator.num_processes}"
            " process): they would each train on all the data and write the same output; on a machine without GPUs,"
            " launch with ACCELERATE_USE_CPU=1 (gloo)"
        )
    engine = sharding_engine(accelerator)
    if engine is not None:
        raise UnlearnError(
            f"accelerate launch set up {engine}, which shards the weights across processes; training here saves "
            "(unwrap_model + save_pretrained), writes resume states and runs the controls (mix, early-stop) on the "
            "full weights of one process, and no sharded run was tested: launch with DDP instead "
            "(accelerate launch --multi_gpu, or accelerate config without FSDP/DeepSpeed)"
        )


def warmup_steps(batches_per_epoch: int, config: TrainConfig) -> int:
    """``warmup_epochs`` epochs of optimiser steps, rounded down."""
    return int(config.warmup_epochs * batches_per_epoch)


def make_schedule(optimizer, batches_per_epoch: int, total: int, config: TrainConfig):
    """The learning-rate schedule: constant (with optional warm-up) or linear warm-up then decay to 0."""
    name = "linear" if config.lr_schedule == "linear" else "constant_with_warmup"
    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps(batches_per_epoch, config), num_training_steps=total)


def train_step(accelerator: Accelerator, model, optimizer, loss_fn: Callable, batch, max_grad_norm: float, schedule=None) -> float:
    """One optimiser step on ``loss_fn(model, batch)`` (autocast when mixed precision is on); returns the loss."""
    with accelerator.autocast():
        loss = loss_fn(model, batch)
    accelerator.backward(loss)
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if schedule is not None:
        schedule.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def make_optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the parameters that require gradients."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)


def train(
    accelerator: Accelerator,
    model,
    loss_fn: Callable,
    loader,
    config: TrainConfig,
    *,
    on_step: Callable[[int], bool] | None = None,
    description: str = "train",
    checkpoints: Checkpoints | None = None,
) -> Trained:
    """Run the loop; ``on_step(step)`` is called after each step and returning True stops training.

    With ``checkpoints``, a resume state is saved every N steps; a saved one is resumed: the loader is
    replayed up to its step (same batches, nothing trained), then the state is loaded.
    """
    model, optimizer, loader = accelerator.prepare(model, make_optimizer(model, config), loader)
    total = planned_steps(len(loader), config)
    schedule = make_schedule(optimizer, len(loader), total, config)
    model.train()
    step, start = 0, checkpoints.start_step if checkpoints is not None else 0
    with tqdm(total=total, desc=description, disable=not accelerator.is_local_main_process) as bar:
        while step < total:
            for batch in loader:
                step += 1
                bar.update(1)
                if step == start:
                    checkpoints.restore(accelerator, model, optimizer, schedule)
                if step > start:
                    loss = train_step(accelerator, model, optimizer, loss_fn, batch, config.max_grad_norm, schedule)
                    bar.set_postfix(step=step, loss=f"{loss:.4f}")
                    if on_step is not None and on_step(step):
                        return Trained(model, step, stopped_early=True)
                    if checkpoints is not None:
                        checkpoints.after_step(step, len(loader), accelerator, model, optimizer, schedule)
                if step >= total:
                    break
    return Trained(model, step, stopped_early=False)
