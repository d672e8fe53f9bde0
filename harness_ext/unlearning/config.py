"""Hyper-parameters of fine-tuning and unlearning, as frozen dataclasses; the errors users see.

Every field is a CLI flag (``lr`` ↔ ``--lr``, ``retain_weight`` ↔ ``--retain-weight``) documented
with its default and source in docs/unlearning.md. Method-specific fields default to ``None``,
meaning "the method's own default" (see ``losses.py``); :func:`resolve` fills them in.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields, replace


class UnlearnError(ValueError):
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

    lr: float = 1e-5
    epochs: int = 5
    max_steps: int | None = None
    batch_size: int = 8
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 512
    seed: int = 0
    lora: int = 0
    dtype: str = "auto"

    def __post_init__(self):
        positive = {"lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size, "max_length": self.max_length}
        for name, value in positive.items():
            if not value > 0:
                raise UnlearnError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.max_steps is not None and self.max_steps < 1:
            raise UnlearnError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.lora < 0:
            raise UnlearnError(f"--lora is a LoRA rank (0 = train full weights), got {self.lora}")


@dataclass(frozen=True)
class MethodConfig:
    """Method hyper-parameters; ``None`` means the method's own default."""

    retain_weight: float | None = None  # λ
    beta: float | None = None  # β (NPO, SimNPO, IdkPO)
    gamma: float | None = None  # γ (SimNPO margin)
    layer: int | None = None  # ℓ (RMU)
    steering: float | None = None  # c (RMU)
    ga_bound: float | None = None  # δ (bounded gradient ascent)


@dataclass(frozen=True)
class UnlearnConfig(TrainConfig, MethodConfig):
    """Everything one unlearning run needs besides data, model and control."""


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
    return replace(config, **filled)


def as_record(config) -> dict:
    """The hyper-parameters as a JSON-ready dict (for control.json)."""
    return asdict(config)
