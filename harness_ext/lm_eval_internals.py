"""Every use of lm-eval's private API, in one place (lm-eval is pinned below 0.5 in pyproject.toml).

Each function here relies on something lm-eval does not promise to keep; tests/test_lm_eval_internals.py
checks each one against the installed lm-eval, so an upgrade that changes one fails there first.

* :func:`run_command`: the ``lm_eval run`` command line (``lm_eval._cli.HarnessCLI`` and its parser),
  parsed before it runs so ``unlearn-bench eval`` can adapt the arguments.
* :func:`without_env_info`: ``simple_evaluate`` calls ``lm_eval.evaluator.add_env_info`` unconditionally.
* :func:`index_without_defaults`: the ``run`` command builds its ``lm_eval.tasks.TaskManager`` by looking
  the name up when it runs.
* :func:`detect_batch_size`: ``HFLM._detect_batch_size``, lm-eval's largest-batch-that-fits probe.
* :func:`whole_generation_groups`: ``HFLM.generate_until`` chunks each settings group by
  ``batch_size_per_gpu`` (0: one chunk per group).
* :func:`set_process_shard`: lm-eval's ``rank`` / ``world_size`` (which requests a process evaluates) read
  ``_rank`` / ``_world_size``, which only HFLM's own multi-GPU set-up sets.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable


def run_command(argv: list[str]) -> tuple[argparse.Namespace, Callable[[argparse.Namespace], None]]:
    """``lm_eval run ARGV``'s parsed arguments, and the function that runs them."""
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    return cli._parser.parse_args(["run", *argv]), cli.execute


@contextlib.contextmanager
def without_env_info():
    """Make ``add_env_info`` (a ``pip list`` and other probes, 0.4–1.3 s) a no-op inside the block."""
    import lm_eval.evaluator

    original = lm_eval.evaluator.add_env_info
    lm_eval.evaluator.add_env_info = lambda results: None
    try:
        yield
    finally:
        lm_eval.evaluator.add_env_info = original


@contextlib.contextmanager
def index_without_defaults():
    """Inside the block, every TaskManager the ``run`` command builds indexes only the given include
    paths, not lm-eval's ~15,000 built-in task YAMLs (6–8 s)."""
    import lm_eval.tasks

    full = lm_eval.tasks.TaskManager

    class OwnTaskManager(full):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "include_defaults": False})

    lm_eval.tasks.TaskManager = OwnTaskManager
    try:
        yield
    finally:
        lm_eval.tasks.TaskManager = full


def detect_batch_size(lm, input_length: int) -> int:
    """The largest batch of ``input_length``-token inputs that fits, by lm-eval's own probe: it halves from
    ``max_batch_size`` while a forward pass (full vocabulary logits) runs out of memory."""
    probe = [(None, [0] * (input_length + 1), [])]  # lm-eval probes len(context + continuation) - 1 tokens
    return int(lm._detect_batch_size(probe, 0))


def set_process_shard(lm, rank: int, world_size: int) -> None:
    """Make ``lm`` evaluate the share of process ``rank`` of ``world_size`` (lm-eval splits the requests by
    ``lm.rank`` / ``lm.world_size`` and gathers the results over the processes)."""
    lm._rank, lm._world_size = rank, world_size


@contextlib.contextmanager
def whole_generation_groups(lm):
    """Inside the block, ``HFLM.generate_until`` hands each group of requests with the same generation
    settings to ``_model_generate`` in one call (its Collator yields one chunk for a batch size of 0)."""
    rows = lm.batch_size_per_gpu
    lm.batch_size_per_gpu = 0
    try:
        yield
    finally:
        lm.batch_size_per_gpu = rows
