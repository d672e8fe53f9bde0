"""``unlearn-bench finetune``, ``unlearn`` and ``mix``: argparse flags for the API in api.py.

``add_*_arguments(parser)`` adds a subcommand's flags; ``run_*(args) -> int`` runs it, printing
one error line and returning 2 on bad input (nothing is written to ``--out`` then).
Hyper-parameter flags default to None, so the dataclass (or method) default applies.
"""

from __future__ import annotations

import argparse
import json
import sys

from harness_ext.unlearning.config import TrainConfig
from harness_ext.unlearning.control import CONTROLS, ControlConfig
from harness_ext.unlearning.losses import METHODS
from harness_ext.unlearning.metric import MetricSpec
from unlearn_tasks.errors import UnlearnBenchError

TRAIN_FLAGS = {
    "lr": (float, "AdamW learning rate"),
    "epochs": (int, "passes over the forget (or training) data"),
    "max_steps": (int, "stop after this many optimiser steps (overrides --epochs)"),
    "batch_size": (int, "sequences per batch (forget and retain batches each)"),
    "weight_decay": (float, "AdamW weight decay"),
    "max_grad_norm": (float, "gradient-norm clipping (0 = off)"),
    "max_length": (int, "tokens per sequence (longer ones are cut at the end)"),
    "seed": (int, "seed for initialisation, shuffling, pairing and RMU's u"),
    "lora": (int, "LoRA rank; 0 trains the full weights"),
    "dtype": (str, "master weights dtype: float32 only (bf16 checkpoints are upcast; pure bf16 training is refused)"),
    "mixed_precision": (str, "no, bf16 or fp16: Accelerate autocast over the float32 weights (default: accelerate's setting, else no)"),
    "lr_schedule": (str, "constant, or linear: warm-up then linear decay to 0 (TOFU's schedule)"),
    "warmup_epochs": (float, "epochs of linear learning-rate warm-up from 0 (TOFU: 1)"),
}
METHOD_FLAGS = {
    "retain_weight": (float, "λ, weight of the retain term (CE_r, KL, or RMU's retain MSE)"),
    "beta": (float, "β, inverse temperature of NPO, SimNPO and IdkPO"),
    "gamma": (float, "γ, SimNPO's reward margin"),
    "layer": (int, "ℓ, RMU's steered decoder layer (0-based; the MLPs of ℓ-2..ℓ train)"),
    "steering": (float, "c, RMU's steering coefficient (target c·u)"),
    "ga_bound": (float, "δ, bounded gradient ascent: forget sequences with NLL > δ give no gradient"),
    "forget_weight": (float, "weight of SimNPO's forget term (its authors' npo_coeff)"),
}
DATA_SPECS = "tofu:<config>, muse:<corpus>/<config>/<split> or file:PATH (JSON/JSONL rows {question, answer} or {text})"


def method_defaults(name: str) -> str:
    """``npo 0.1, simnpo 2.5`` — each method's default for one hyper-parameter."""
    pairs = [f"{method} {spec.defaults[name]}" for method, spec in sorted(METHODS.items()) if name in spec.defaults]
    return ", ".join(pairs) or "none (off)"


def train_default(name: str) -> str:
    """A shared flag's default; for --lr also the methods that have their own."""
    default = getattr(TrainConfig(), name)
    return f"{default}; {method_defaults(name)}" if name == "lr" else str(default)


def add_flags(parser, table: dict, default_of) -> None:
    for name, (kind, text) in table.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, type=kind, default=None, help=f"{text} (default: {default_of(name)})")


def hyperparameters(args, *tables: dict) -> dict:
    """The hyper-parameter flags the user gave (None ones are left to the defaults)."""
    names = [name for table in tables for name in table]
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def add_calibration_flags(parser) -> None:
    spec = MetricSpec()
    parser.add_argument("--calibrate-on", default=spec.metric, help=f"metric the control keeps ≥ τ × the target's (default: {spec.metric})")
    parser.add_argument("--calibrate-task", default=spec.task, help=f"lm-eval task reporting it (default: {spec.task})")
    parser.add_argument("--calibrate-limit", type=int, default=None, help="score only the first N documents (default: all)")
    parser.add_argument("--calibrate-metadata", type=json.loads, default=None, help="JSON metadata for the task (default: none)")


def calibration_spec(args) -> MetricSpec:
    return MetricSpec(args.calibrate_on, args.calibrate_task, args.calibrate_limit, args.calibrate_metadata or {})


def add_save_every(parser) -> None:
    parser.add_argument("--save-every", type=int, default=None, metavar="N",
                        help="write a resume state to <out>.resume every N optimiser steps; rerunning the same command "
                             "resumes from it (default: none)")


def add_finetune_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True, help="base checkpoint folder (or hub id)")
    parser.add_argument("--data", required=True, help=f"training data: {DATA_SPECS}, e.g. tofu:full (target)")
    parser.add_argument("--out", required=True, help="folder for the fine-tuned checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_save_every(parser)
    add_flags(parser, TRAIN_FLAGS, lambda name: getattr(TrainConfig(), name))
    return parser


def add_unlearn_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True, help="target checkpoint folder (fine-tuned on the forget data)")
    parser.add_argument("--method", required=True, help=f"unlearning method: {', '.join(sorted(METHODS))}")
    parser.add_argument("--forget", required=True, help=f"forget data: {DATA_SPECS}, e.g. tofu:forget10")
    parser.add_argument("--retain", required=True, help="retain data (same forms), e.g. tofu:retain90")
    parser.add_argument("--out", required=True, help="folder for the unlearned (controlled) checkpoint")
    parser.add_argument("--control", default="none", help=f"control: {', '.join(CONTROLS)} (default: none)")
    parser.add_argument("--tau", type=float, default=None, help="τ in (0, 1]: the fraction of the target's metric to keep (mix, early-stop)")
    parser.add_argument("--eval-every", type=int, default=ControlConfig().eval_every, help="early-stop: steps between measurements (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_save_every(parser)
    add_calibration_flags(parser)
    add_flags(parser, TRAIN_FLAGS, train_default)
    add_flags(parser, METHOD_FLAGS, method_defaults)
    return parser


def add_mix_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--target", required=True, help="target checkpoint folder")
    parser.add_argument("--unlearned", required=True, help="unlearned checkpoint or LoRA adapter folder")
    parser.add_argument("--out", required=True, help="folder for the mixed checkpoint")
    parser.add_argument("--alpha", type=float, default=None, help="mix at this α in [0, 1]")
    parser.add_argument("--tau", type=float, default=None, help="or calibrate α to keep τ × the target's metric")
    parser.add_argument("--device", default=None, help="where to mix and calibrate: cpu, cuda, cuda:1, … (default: cuda if available, else cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    add_calibration_flags(parser)
    return parser


def reported(command: str, run) -> int:
    """Run ``run()``; bad input (any :class:`UnlearnBenchError`) becomes one ``error:`` line on stderr and exit
    status 2, as the command line reports it, also for a caller of ``run_*`` without it."""
    try:
        run()
    except UnlearnBenchError as error:
        print(f"unlearn-bench {command}: error: {error}", file=sys.stderr)
        return 2
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    from harness_ext.unlearning.api import finetune

    return reported("finetune", lambda: finetune(
        args.model, args.data, args.out, overwrite=args.overwrite, save_every=args.save_every,
        **hyperparameters(args, TRAIN_FLAGS)
    ))


def run_unlearn(args: argparse.Namespace) -> int:
    from harness_ext.unlearning.api import unlearn

    return reported("unlearn", lambda: unlearn(
        args.model, args.method, args.forget, args.retain, args.out,
        control=args.control, tau=args.tau, eval_every=args.eval_every, overwrite=args.overwrite, save_every=args.save_every,
        calibrate=calibration_spec(args), **hyperparameters(args, TRAIN_FLAGS, METHOD_FLAGS),
    ))


def run_mix(args: argparse.Namespace) -> int:
    from harness_ext.unlearning.api import mix

    return reported("mix", lambda: mix(
        args.target, args.unlearned, args.out, alpha=args.alpha, tau=args.tau, overwrite=args.overwrite,
        calibrate=calibration_spec(args), device=args.device,
    ))
