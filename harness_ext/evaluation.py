"""Running our tasks through lm-eval: the task manager, the Python API and the ``eval`` command."""

from __future__ import annotations

import argparse
import importlib.resources
from pathlib import Path

import torch

DETAIL_MODELS = ("unlearn_hf", "unlearn_mix")


def tasks_dir() -> Path:
    """The installed ``tasks/`` folder (package ``unlearn_tasks``)."""
    return Path(str(importlib.resources.files("unlearn_tasks")))


def task_manager(metadata: dict | None = None, include_defaults: bool = False, include_path=None):
    """An lm-eval TaskManager that knows our tasks. Metadata goes here: ``simple_evaluate`` drops its own
    ``metadata`` argument when given a TaskManager."""
    from lm_eval.tasks import TaskManager

    paths = [str(tasks_dir())] + ([include_path] if include_path else [])
    return TaskManager(include_path=paths, include_defaults=include_defaults, metadata=metadata or {})


def evaluate(lm, tasks: list[str], *, limit: int | float | None = None, metadata: dict | None = None,
             log_samples: bool = False, **simple_evaluate_kwargs) -> dict:
    """Score an lm-eval model instance on our tasks; returns lm-eval's results dict.

    With our ``unlearn_hf`` model the tasks take the one-forward-pass path (``token_details``).
    """
    import lm_eval

    from harness_ext.models import UnlearnHFLM

    metadata = dict(metadata or {})
    if isinstance(lm, UnlearnHFLM):
        metadata.setdefault("token_details", True)
    metadata.setdefault("pretrained", getattr(lm.tokenizer, "name_or_path", None))
    return lm_eval.simple_evaluate(
        model=lm, tasks=list(tasks), task_manager=task_manager(metadata), limit=limit,
        log_samples=log_samples, **simple_evaluate_kwargs,
    )


def run_eval(argv: list[str]) -> int:
    """``unlearn-bench eval``: lm-eval's own ``run`` command with our tasks and models registered.

    Differences from plain ``lm_eval``: ``--model hf`` becomes ``unlearn_hf`` (the same HF model plus
    per-token details, so each sequence needs one forward pass), ``--device`` defaults to ``cpu`` when
    no GPU is visible, and ``--tasks list`` lists our tasks.
    """
    import harness_ext.mixing  # noqa: F401  (registers unlearn_mix)
    import harness_ext.models  # noqa: F401  (registers unlearn_hf)
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    setup_logging()
    cli = HarnessCLI()
    args = cli._parser.parse_args(["run", *argv])
    if args.tasks in (["list"], "list"):
        return _list_tasks()
    _adapt(args)
    _check_checkpoint(args.model_args)
    cli.execute(args)
    return 0


def _adapt(args: argparse.Namespace) -> None:
    args.include_path = [str(tasks_dir())] + ([args.include_path] if args.include_path else [])
    if args.model in (None, "hf"):
        args.model = "unlearn_hf"
    if args.device is None and not torch.cuda.is_available():
        args.device = "cpu"
    if args.model in DETAIL_MODELS:
        args.metadata = {"token_details": True, **(args.metadata or {})}


def _check_checkpoint(model_args) -> None:
    """A local checkpoint path that does not exist is an error before anything loads."""
    from harness_ext.data import DataError

    arguments = model_args if isinstance(model_args, dict) else {}
    for key in ("pretrained", "base", "peft"):
        value = arguments.get(key)
        if isinstance(value, str) and value.startswith(("/", "./", "../", "~")) and not Path(value).expanduser().exists():
            raise DataError(f"checkpoint not found: {key}={value}")


def _list_tasks() -> int:
    manager = task_manager()
    names = sorted(name for name in manager.all_tasks if name.startswith("unlearn"))
    kinds = {name: "tag" if name in manager.all_tags else "group" if name in manager.all_groups else "task"
             for name in names}
    for name in names:
        print(f"{name}\t{kinds[name]}")
    return 0
