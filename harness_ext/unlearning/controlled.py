"""Training under a control: early stopping during the loop, or mixing calibrated after it.

Which weights train: a LoRA adapter (``--lora r``), the parameters a method chooses (RMU), or all.
"""

from __future__ import annotations

from collections.abc import Callable

from harness_ext.mixing import AdapterScaler, WeightMixer, state_dict_copy
from harness_ext.unlearning.config import UnlearnConfig
from harness_ext.unlearning.control import ControlConfig, EarlyStop, calibrate_mix
from harness_ext.unlearning.logprobs import Reference
from harness_ext.unlearning.losses import LossContext, Method
from harness_ext.unlearning.resume import Checkpoints
from harness_ext.unlearning.train import train


def with_lora(model, rank: int):
    """``model`` wrapped with a rank-``rank`` LoRA adapter on every linear layer (α_LoRA = 2r, no dropout)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


class ControlledRun:
    """Training with a control: early stopping during the loop, or mixing calibrated after it."""

    def __init__(self, accelerator, method: Method, config: UnlearnConfig, controls: ControlConfig, measure, bar,
                 checkpoints: Checkpoints | None = None):
        self.accelerator, self.method, self.config, self.controls = accelerator, method, config, controls
        self.measure, self.bar, self.checkpoints = measure, bar, checkpoints

    def run(self, model, loader, record: dict):
        """Train ``model`` and apply the control; fills ``steps`` (and ``alpha``/``trace``) in ``record``."""
        mixing = self.controls.kind == "mix"
        target_state = state_dict_copy(model) if mixing and not self.config.lora else None
        model = prepare_trainable(model, self.method, self.config)
        reference = Reference(model).to(self.accelerator.device) if self.method.reference else None
        context = LossContext(self.config, reference)
        stopper = None
        if self.controls.kind == "early-stop":
            stopper = EarlyStop(model, lambda: self.measure(model), self.bar, self.controls.eval_every)
            if self.checkpoints is not None:
                self.checkpoints.track("early_stop", stopper)
        trained = train(self.accelerator, model, lambda network, step: self.method.loss(network, step, context),
                        loader, self.config, on_step=stopper, description=f"unlearn ({self.method.name})",
                        checkpoints=self.checkpoints)
        model = self.accelerator.unwrap_model(trained.model)
        record["steps"] = trained.steps
        if stopper is not None:
            if not trained.stopped_early:
                stopper.finish(trained.steps)
            record.update(trace=stopper.trace, kept_step=stopper.kept_step)
        if mixing and self.accelerator.is_main_process:
            alpha, trace = mix_control(model, target_state, lambda: self.measure(model), self.bar, self.controls)
            record.update(alpha=alpha, trace=trace)
        return model


def prepare_trainable(model, method: Method, config: UnlearnConfig):
    """Wrap with LoRA, or freeze all but the method's chosen parameters (RMU), or train everything."""
    if config.lora:
        return with_lora(model, config.lora)
    if method.trains is not None:
        chosen = method.trains(model, config)
        model.requires_grad_(False)
        for parameter in chosen:
            parameter.requires_grad_(True)
    return model


def mix_control(model, target_state, measure: Callable[[], float], bar: float, controls: ControlConfig):
    """Calibrate α on the trained ``model`` (full weights against ``target_state``, or its LoRA adapter)."""
    if target_state is None:
        mixer = AdapterScaler(model)
    else:
        mixer = WeightMixer(model, target_state, state_dict_copy(model))
    return calibrate_mix(mixer, measure, bar, controls.tolerance)
