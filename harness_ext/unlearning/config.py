"""Hyper-parameters of fine-tuning and unlearning, as frozen dataclasses; the errors users see.

Every field is a CLI flag (``lr`` ↔ ``--lr``, ``retain_weight`` ↔ ``--retain-weight``) documented
with its default and source in docs/unlearning.md. Method-specific fields default to ``None``,
meaning "the method's own default" (see ``losses.py``); :func:`resolve` fills them in.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields, replace

from unlearn_tasks.errors import UnlearnBenchError


MASTER_DTYPE = "float32"
MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear")
DEFAULT_LR = 1e-5


class UnlearnError(UnlearnBenchError, ValueError):
    """Bad input to fine-tuning, unlearning or mixing: the message says what, where and how to fix it."""


def unknown_name_error(kind: str, name: str, known) -> UnlearnError:
    """``unknown <kind> 'x' (did you mean 'y'?); known: a, b, c``."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnlearnError(f"unknown {kind} {name!r}{hint}; known: {', '.join(known)}")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation shared by fine-tuning and every unlearning method."""

    lr: float | None = DEFAULT_LR
    epochs: int = 5
    max_steps: int | None = None
    batch_size: int = 8
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 512
    seed: int = 0
    lora: int = 0
    dtype: str = MASTER_DTYPE
    mixed_precision: str | None = None  # None: Accelerate's own setting (accelerate launch/config), else no
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0

    def __post_init__(self):
        positive = {"lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size, "max_length": self.max_length}
        for name, value in positive.items():
            if value is not None and not value > 0:
                raise UnlearnError(f"--{name.replace('_', '-')} must be positive, got {value}")
        check_precision(self.dtype, self.mixed_precision)
        if self.lr_schedule not in LR_SCHEDULES:
            raise unknown_name_error("learning-rate schedule", self.lr_schedule, LR_SCHEDULES)
        if not self.warmup_epochs >= 0:
            raise UnlearnError(f"--warmup-epochs must be at least 0, got {self.warmup_epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UnlearnError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.lora < 0:
            raise UnlearnError(f"--lora is a LoRA rank (0 = train full weights), got {self.lora}")


def check_precision(dtype: str, mixed_precision: str | None) -> None:
    """Training keeps float32 master weights; bf16/fp16 compute comes from Accelerate's mixed precision."""
    if dtype != MASTER_DTYPE:
        raise UnlearnError(
            f"--dtype {dtype}: training keeps float32 master weights (pure {dtype} AdamW rounds most "
            "1e-5 updates away); use --dtype float32 with --mixed-precision bf16 for bf16 compute"
        )
    if mixed_precision is not None and mixed_precision not in MIXED_PRECISION:
        raise unknown_name_error("mixed precision", mixed_precision, MIXED_PRECISION)


@dataclass(frozen=True)
class MethodConfig:
    """Method hyper-parameters; ``None`` means the method's own default."""

    retain_weight: float | None = None  # λ
    beta: float | None = None  # β (NPO, SimNPO, IdkPO)
    gamma: float | None = None  # γ (SimNPO margin)
    layer: int | None = None  # ℓ (RMU)
    steering: float | None = None  # c (RMU)
    ga_bound: float | None = None  # δ (bounded gradient ascent)
    forget_weight: float | None = None  # weight of the forget term (SimNPO's npo_coeff)


@dataclass(frozen=True)
class UnlearnConfig(TrainConfig, MethodConfig):
    """Everything one unlearning run needs besides data, model and control (``lr`` None: the method's default)."""

    lr: float | None = None


def config_from(cls, values: dict):
    """``cls(**values)`` with an error naming unknown hyper-parameters instead of a TypeError."""
    known = {field.name for field in fields(cls)}
    for name in values:
        if name not in known:
            raise unknown_name_error("hyper-parameter", name, known)
    return cls(**values)


def resolve(config: UnlearnConfig, defaults: dict) -> UnlearnConfig:
    """Fill the ``None`` method fields from a method's ``defaults``."""
    filled = {name: value for name, value in defaults.items() if getattr(config, name) is None}
    if config.lr is None and "lr" not in filled:
        filled["lr"] = DEFAULT_LR
    return replace(config, **filled)


def as_record(config) -> dict:
    """The hyper-parameters as a JSON-ready dict (for control.json)."""
    return asdict(config)
