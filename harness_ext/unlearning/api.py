"""The Python API: ``finetune``, ``unlearn`` and ``mix``, each writing one checkpoint folder with control.json.

Every input is checked before any training, and ``--out`` is written atomically at the end, so a
bad input or an interrupted run leaves nothing behind. Weights train and mix in float32; every
evaluation of a control (target, bisection steps, early stop) runs on the training device.
``finetune_model`` fine-tunes an in-memory model (no checkpoint), e.g. for relearning attacks.
See docs/unlearning.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from harness_ext.mixing import check_alpha, mixer_for
from harness_ext.provenance import package_version
from harness_ext.unlearning.batches import finetune_loader, unlearn_loader
from harness_ext.unlearning.checkpoint import CONTROL_FILE, check_master_weights, check_out, load_model, save_checkpoint
from harness_ext.unlearning.config import TrainConfig, UnlearnConfig, UnlearnError, as_record, config_from, resolve
from harness_ext.unlearning.control import ControlConfig, calibrate_mix
from harness_ext.unlearning.controlled import ControlledRun, with_lora
from harness_ext.unlearning.logprobs import answer_ce
from harness_ext.unlearning.losses import METHODS, Method, get_method, rmu_layers
from harness_ext.unlearning.metric import Calibration, MetricSpec
from harness_ext.unlearning.resume import checkpoints_for
from harness_ext.unlearning.sources import is_text, load_training_rows, training_row
from harness_ext.unlearning.train import make_accelerator, train
from unlearn_tasks.tofu.data import load_refusals


def load_rows(data, role: str) -> tuple[list[dict], str]:
    """``(rows, label)`` from a data spec (see ``sources.py``) or in-memory rows ``{question, answer}`` / ``{text}``."""
    if isinstance(data, str):
        rows, label = load_training_rows(data), data
    else:
        rows = [training_row(row, f"{role} row {number}") for number, row in enumerate(data, start=1)]
        label = f"<{len(rows)} in-memory rows>"
    if len(rows) == 0:
        raise UnlearnError(f"the {role} data {label} has no rows")
    return rows, label


def base_record(kind: str, config, steps: int, data: dict, source) -> dict:
    """The control.json fields every checkpoint has."""
    return {
        "method": kind, "control": "none", "tau": None, "alpha": None, "trace": [],
        "hyperparameters": as_record(config), "seed": config.seed, "steps": steps,
        "data": data, "model": source, "lora": config.lora, "unlearn_bench_version": package_version(),
    }


def save_from_main(accelerator: Accelerator, out: Path, model, tokenizer, record: dict, checkpoints=None) -> None:
    """Write ``out`` (main process), then drop the run's resume state."""
    if accelerator.is_main_process:
        save_checkpoint(out, model, tokenizer, record)
    if checkpoints is not None:
        checkpoints.discard(accelerator)
    accelerator.wait_for_everyone()


def finetune(model, data, out, *, tokenizer=None, overwrite: bool = False, save_every: int | None = None,
             **hyperparameters) -> Path:
    """Fine-tune on ``data`` (CE on answer tokens, same prompt as the tasks); write a full checkpoint to ``out``.

    ``hyperparameters``: the fields of :class:`TrainConfig` (lr, epochs, max_steps, batch_size, …).
    With ``lora=r`` a LoRA adapter is trained and merged into the saved weights. ``save_every=N``
    writes a resume state every N steps, and resumes a saved one (see ``resume.py``).
    """
    config = config_from(TrainConfig, hyperparameters)
    out = check_out(out, overwrite)
    rows, label = load_rows(data, "training")
    model, tokenizer, source = load_model(model, tokenizer, config.dtype)
    checkpoints = checkpoints_for(out, save_every, "finetune", config, model, tokenizer, {"train": rows})
    set_seed(config.seed)
    accelerator = make_accelerator(config)
    if config.lora:
        model = with_lora(model, config.lora)
    loader = finetune_loader(tokenizer, rows, config.batch_size, config.seed, config.max_length)
    trained = train(accelerator, model, answer_ce, loader, config, description="finetune", checkpoints=checkpoints)
    model = accelerator.unwrap_model(trained.model)
    if config.lora:
        model = model.merge_and_unload()
    record = base_record("finetune", config, trained.steps, {"train": label}, source)
    save_from_main(accelerator, out, model, tokenizer, record, checkpoints)
    return out


def finetune_model(model, rows, *, tokenizer, steps: int | None = None, lr: float = 1e-5, seed: int = 0,
                   batch_size: int = 8, max_length: int = 512):
    """Fine-tune the in-memory float32 ``model`` on ``rows`` with NLL and AdamW; returns it (eval mode, same device).

    ``rows``: ``{question, answer}`` (answer tokens trained) or ``{text}`` (all tokens). ``steps``:
    optimiser steps (cycling through the rows), or None for one epoch. Seeded shuffling; the loop,
    AdamW (weight decay 0.01) and clipping of :func:`finetune`, at a constant ``lr``. Writes nothing.
    """
    config = TrainConfig(lr=lr, epochs=1, max_steps=steps, batch_size=batch_size, max_length=max_length, seed=seed)
    rows, _ = load_rows(rows, "training")
    check_master_weights(model)
    device = next(model.parameters()).device
    set_seed(seed)
    accelerator = make_accelerator(config)
    loader = finetune_loader(tokenizer, rows, batch_size, seed, max_length)
    trained = train(accelerator, model, answer_ce, loader, config, description="finetune_model")
    return accelerator.unwrap_model(trained.model).to(device).eval()


def unlearn_config(method: Method, hyperparameters: dict) -> UnlearnConfig:
    """The method's resolved hyper-parameters, checked against what the method supports."""
    config = resolve(config_from(UnlearnConfig, hyperparameters), method.defaults)
    if config.ga_bound is not None and not method.bounded:
        bounded = ", ".join(sorted(name for name, entry in METHODS.items() if entry.bounded))
        raise UnlearnError(f"--ga-bound applies to methods with a −CE_f term ({bounded}), not {method.name!r}")
    if config.lora and method.trains is not None:
        raise UnlearnError(f"{method.name!r} chooses the weights it trains; it cannot be combined with --lora")
    if config.forget_weight is not None and "forget_weight" not in method.defaults:
        raise UnlearnError(f"--forget-weight applies to simnpo, not {method.name!r}")
    return config


def unlearn(
    model,
    method: str,
    forget,
    retain,
    out,
    *,
    tokenizer=None,
    control: str = "none",
    tau: float | None = None,
    eval_every: int = 10,
    calibrate: MetricSpec | None = None,
    metric_fn: Callable | None = None,
    overwrite: bool = False,
    save_every: int | None = None,
    **hyperparameters,
) -> dict:
    """Unlearn ``forget`` from ``model`` with ``method`` (retain data ``retain``), apply ``control``, write ``out``.

    ``model``: a checkpoint path, or a PreTrainedModel with ``tokenizer``. ``forget``/``retain``:
    ``tofu:<config>`` specs or rows. ``control``: none, mix, early-stop, ga-bound (τ for mix and
    early-stop). ``calibrate``: the calibration metric (default es_retain of unlearn_tofu_utility);
    ``metric_fn(model, tokenizer) -> float`` replaces it by any function.
    ``hyperparameters``: fields of :class:`UnlearnConfig`. ``save_every=N``: resume states (``resume.py``).
    Returns the control.json record.
    """
    chosen = get_method(method)
    config = unlearn_config(chosen, hyperparameters)
    controls = ControlConfig(control, tau, eval_every)
    if controls.kind == "ga-bound" and config.ga_bound is None:
        raise UnlearnError("--control ga-bound needs --ga-bound δ (the NLL above which forget sequences stop)")
    calibration = Calibration(calibrate or MetricSpec(), metric_fn)
    out = check_out(out, overwrite)
    forget_rows, forget_label = load_rows(forget, "forget")
    retain_rows, retain_label = load_rows(retain, "retain")
    if chosen.refusals and any(is_text(row) for row in forget_rows):
        raise UnlearnError(f"{chosen.name} pairs each forget question with a refusal: its forget data must be question/answer rows")
    refusals = load_refusals() if chosen.refusals else None
    model, tokenizer, source = load_model(model, tokenizer, config.dtype)
    if chosen.trains is not None:
        rmu_layers(model, config.layer)
    checkpoints = checkpoints_for(
        out, save_every, "unlearn", config, model, tokenizer,
        {"forget": forget_rows, "retain": retain_rows, "refusals": refusals or []}, method=chosen.name,
        control=as_record(controls), calibration=[calibration.spec.task_config(), metric_fn is None] if controls.measured else None,
    )

    record = base_record(chosen.name, config, 0, {"forget": forget_label, "retain": retain_label}, source)
    record.update(control=controls.kind, tau=controls.tau)
    accelerator = make_accelerator(config)
    model.to(accelerator.device)  # the target is measured where the controls measure the unlearned model
    if controls.measured:
        record["calibration"] = calibration.target_bar(model, tokenizer, controls.tau)
    set_seed(config.seed)
    loader = unlearn_loader(tokenizer, forget_rows, retain_rows, config.batch_size, config.seed, config.max_length, refusals)
    if checkpoints is not None:
        checkpoints.track("calibration", calibration)
    controlled = ControlledRun(accelerator, chosen, config, controls, lambda network: calibration.measure(network, tokenizer),
                               record.get("calibration", {}).get("bar"), checkpoints)
    model = controlled.run(model, loader, record)
    record["trace"] = calibration.annotate(record["trace"])
    save_from_main(accelerator, out, model, tokenizer, record, checkpoints)
    return record


def mix(
    target,
    unlearned,
    out,
    *,
    alpha: float | None = None,
    tau: float | None = None,
    tokenizer=None,
    calibrate: MetricSpec | None = None,
    metric_fn: Callable | None = None,
    overwrite: bool = False,
    device: str | None = None,
) -> dict:
    """Write θ(α) of two existing checkpoints (``unlearned`` may be a LoRA adapter) to ``out``.

    Give ``alpha`` to mix at that α, or ``tau`` to calibrate α as ``--control mix`` does. Both models
    load in float32 and the mixture is computed and saved in float32; the target and every mixture
    are measured on ``device`` (default: cuda if available, else cpu). Returns the control.json record.
    """
    if (alpha is None) == (tau is None):
        raise UnlearnError("give exactly one of --alpha (mix at that α) or --tau (calibrate α)")
    if alpha is not None:
        check_alpha(alpha)
    else:
        ControlConfig("mix", tau)
    calibration = Calibration(calibrate or MetricSpec(), metric_fn)
    out = check_out(out, overwrite)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer, source = load_model(target, tokenizer, device=device)
    previous = read_record(unlearned)
    record = {
        "method": previous.get("method"), "control": "mix", "tau": tau, "alpha": alpha, "trace": [],
        "data": previous.get("data", {}), "hyperparameters": previous.get("hyperparameters"),
        "model": source, "unlearned": str(unlearned), "device": str(device), "unlearn_bench_version": package_version(),
    }
    if tau is not None:
        record["calibration"] = calibration.target_bar(model, tokenizer, tau)
    model, mixer = mixer_for(model, unlearned)
    if alpha is None:
        bar = record["calibration"]["bar"]
        alpha, trace = calibrate_mix(mixer, lambda: calibration.measure(model, tokenizer), bar, ControlConfig().tolerance)
        record.update(alpha=alpha, trace=calibration.annotate(trace))
    else:
        mixer(alpha)
    save_checkpoint(out, model, tokenizer, record)
    return record


def read_record(folder) -> dict:
    """The control.json of a checkpoint folder, or {} when it has none."""
    path = Path(folder) / CONTROL_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
