"""The one training loop, for fine-tuning and every unlearning method, through HF Accelerate.

The same code runs on a CPU, one GPU, or several under ``accelerate launch`` (DDP, FSDP or
DeepSpeed as configured by ``accelerate config``); mixed precision comes from Accelerate too.
Optimiser: AdamW at a constant learning rate, gradients clipped to ``max_grad_norm``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from harness_ext.unlearning.config import TrainConfig


@dataclass
class Trained:
    """The loop's outcome: the prepared (possibly wrapped) model and the optimiser steps taken."""

    model: torch.nn.Module
    steps: int
    stopped_early: bool


def planned_steps(batches_per_epoch: int, config: TrainConfig) -> int:
    """``max_steps`` when set (cycling through the data as needed), else ``epochs`` passes."""
    return config.max_steps if config.max_steps is not None else config.epochs * batches_per_epoch


def train_step(accelerator: Accelerator, model, optimizer, loss_fn: Callable, batch, max_grad_norm: float) -> float:
    """One optimiser step on ``loss_fn(model, batch)``; returns the loss."""
    loss = loss_fn(model, batch)
    accelerator.backward(loss)
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
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
) -> Trained:
    """Run the loop; ``on_step(step)`` is called after each step and returning True stops training."""
    model, optimizer, loader = accelerator.prepare(model, make_optimizer(model, config), loader)
    total = planned_steps(len(loader), config)
    model.train()
    step = 0
    with tqdm(total=total, desc=description, disable=not accelerator.is_local_main_process) as bar:
        while step < total:
            for batch in loader:
                loss = train_step(accelerator, model, optimizer, loss_fn, batch, config.max_grad_norm)
                step += 1
                bar.update(1)
                bar.set_postfix(step=step, loss=f"{loss:.4f}")
                if on_step is not None and on_step(step):
                    return Trained(model, step, stopped_early=True)
                if step >= total:
                    break
    return Trained(model, step, stopped_early=False)
