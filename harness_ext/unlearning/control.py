"""Controls: bring an unlearned model back to a fraction τ of the target's utility before comparing methods.

- ``mix``: the largest α ∈ [0, 1] (to a tolerance of 1/64) whose θ(α) keeps the calibration
  metric ≥ τ × the target's value, by bisection (Wang et al. 2024, arXiv:2406.09179).
- ``early-stop``: every N steps, measure the metric; stop when it falls below the bar and keep
  the last weights that were above it.
- ``ga-bound``: bounded gradient ascent (``--ga-bound δ``) and no post-hoc control.
- ``none``: the unlearned model as trained.

The metric is any ``metric_fn(model, tokenizer) -> float``; by default an lm-eval task through
:func:`harness_ext.evaluation.evaluate` on the in-memory model (see ``metric.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from harness_ext.unlearning.config import UnlearnError, unknown_name_error

CONTROLS = {
    "none": "the unlearned model as trained",
    "mix": "model mixing, α calibrated by bisection to keep τ × the target's metric",
    "early-stop": "stop when the metric falls below τ × the target's; keep the last model above it",
    "ga-bound": "bounded gradient ascent (--ga-bound δ), no post-hoc control",
}
MEASURED = ("mix", "early-stop")
TOLERANCE = 1 / 64


@dataclass(frozen=True)
class ControlConfig:
    """Which control, its τ, and for the measured ones how often (early-stop) and how precisely (mix)."""

    kind: str = "none"
    tau: float | None = None
    eval_every: int = 10
    tolerance: float = TOLERANCE

    def __post_init__(self):
        if self.kind not in CONTROLS:
            raise unknown_name_error("control", self.kind, CONTROLS)
        if self.kind in MEASURED:
            if self.tau is None:
                raise UnlearnError(f"--control {self.kind} needs --tau in (0, 1], e.g. --tau 0.9")
            if not 0.0 < self.tau <= 1.0:
                raise UnlearnError(f"--tau must be in (0, 1], got {self.tau}")
        elif self.tau is not None:
            raise UnlearnError(f"--tau applies to --control mix or early-stop, not {self.kind!r}")
        if self.eval_every < 1:
            raise UnlearnError(f"--eval-every must be at least 1, got {self.eval_every}")

    @property
    def measured(self) -> bool:
        return self.kind in MEASURED


def bar_for(target_value: float, tau: float) -> float:
    """τ × the target's metric; the target's value must be positive for the bar to mean anything."""
    if not target_value > 0:
        raise UnlearnError(
            f"the target's calibration metric is {target_value}; controls need a positive metric "
            "(higher is better) — choose another --calibrate-on"
        )
    return tau * target_value


def bisect_alpha(
    score: Callable[[float], float], bar: float, tolerance: float = TOLERANCE
) -> tuple[float, list[dict]]:
    """The largest α in [0, 1] with ``score(α) ≥ bar``, to ``tolerance``, and the trace of every trial.

    α = 0 (the target) is assumed to meet the bar. α = 1 is tried first; otherwise the bracket
    [lo, hi] (lo meets the bar, hi does not) halves until hi − lo ≤ tolerance, so the answer's
    neighbour α + tolerance was measured below the bar (or α = 1).
    """
    trace = []
    trials = 1 + max(0, math.ceil(math.log2(1 / tolerance)))
    with tqdm(total=trials, desc="calibrate α") as progress:

        def trial(alpha: float) -> bool:
            value = float(score(alpha))
            meets = value >= bar
            trace.append({"alpha": alpha, "metric": value, "meets_bar": meets})
            progress.update(1)
            progress.set_postfix(alpha=f"{alpha:.4f}", metric=f"{value:.4f}", bar=f"{bar:.4f}")
            return meets

        if trial(1.0):
            return 1.0, trace
        low, high = 0.0, 1.0
        while high - low > tolerance:
            middle = (low + high) / 2
            if trial(middle):
                low = middle
            else:
                high = middle
    return low, trace


def calibrate_mix(apply_alpha: Callable[[float], None], measure: Callable[[], float], bar: float, tolerance: float):
    """Bisection over α where ``apply_alpha(α)`` sets the model to θ(α) and ``measure()`` scores it.

    Leaves the model at the chosen α; returns ``(α, trace)``.
    """

    def score(alpha: float) -> float:
        apply_alpha(alpha)
        return measure()

    alpha, trace = bisect_alpha(score, bar, tolerance)
    apply_alpha(alpha)
    return alpha, trace


class EarlyStop:
    """``on_step`` callback: every ``every`` steps measure; below the bar, restore the last good weights and stop."""

    def __init__(self, model, measure: Callable[[], float], bar: float, every: int):
        self.model, self.measure, self.bar, self.every = model, measure, bar, every
        self.trace: list[dict] = []
        self.kept_step = 0
        self.kept = self._snapshot()

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {
            name: parameter.detach().to("cpu", copy=True)
            for name, parameter in self.model.named_parameters()
            if parameter.requires_grad
        }

    @torch.no_grad()
    def _restore(self) -> None:
        parameters = dict(self.model.named_parameters())
        for name, value in self.kept.items():
            parameters[name].copy_(value)

    def check(self, step: int) -> bool:
        """Measure now; True (stop) when below the bar, after restoring the last weights above it."""
        value = float(self.measure())
        meets = value >= self.bar
        self.trace.append({"step": step, "metric": value, "meets_bar": meets})
        if meets:
            self.kept, self.kept_step = self._snapshot(), step
            return False
        self._restore()
        return True

    def __call__(self, step: int) -> bool:
        return step % self.every == 0 and self.check(step)

    def state_dict(self) -> dict:
        """The measurements so far and the kept weights (for a resume state)."""
        return {"trace": self.trace, "kept_step": self.kept_step, "kept": self.kept}

    def load_state_dict(self, state: dict) -> None:
        self.trace, self.kept_step, self.kept = list(state["trace"]), int(state["kept_step"]), dict(state["kept"])

    def finish(self, steps: int) -> None:
        """After the loop ends on its own: measure the final weights unless that step was just measured."""
        if not self.trace or self.trace[-1]["step"] != steps:
            self.check(steps)
