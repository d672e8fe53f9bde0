"""Model mixing θ(α) = (1−α)·θ_target + α·θ_unlearned, in memory, and the ``unlearn_mix`` lm-eval model.

Mixing is the control of Wang et al. 2024 (arXiv:2406.09179): it interpolates between the
target and the unlearned weights. α = 0 gives the target's tensors and α = 1 the unlearned
model's, exactly (both endpoints are special-cased, no arithmetic). For a PEFT LoRA adapter,
θ_unlearned = W + ΔW, so θ(α) = W + α·ΔW: mixing scales the adapter (each ``lora_B`` by α).

    lm_eval --model unlearn_mix --model_args base=target/,pretrained=ckpt/,alpha=0.3
    (through ``unlearn-bench eval``, which imports this module so lm-eval can find the name)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import lm_eval.models  # noqa: F401  (fill lm-eval's registry with the built-ins first)
import torch
from lm_eval.api.registry import register_model
from transformers import AutoModelForCausalLM

from harness_ext.models import UnlearnHFLM
from harness_ext.unlearning.config import UnlearnError

ADAPTER_CONFIG = "adapter_config.json"


class MixingError(UnlearnError):
    """Models that cannot be mixed, or an α outside [0, 1]."""


def check_alpha(alpha: float) -> float:
    """α as a float in [0, 1]."""
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise MixingError(f"alpha must be in [0, 1], got {alpha}")
    return alpha


def check_compatible(target: Mapping[str, torch.Tensor], unlearned: Mapping[str, torch.Tensor]) -> None:
    """Raise a MixingError naming (up to five) missing, extra or differently shaped tensors."""
    missing, extra = sorted(set(target) - set(unlearned)), sorted(set(unlearned) - set(target))
    if missing or extra:
        raise MixingError(
            "cannot mix models with different parameters: "
            f"only in target: {missing[:5]}{' …' if len(missing) > 5 else ''}; "
            f"only in unlearned: {extra[:5]}{' …' if len(extra) > 5 else ''}"
        )
    shapes = [
        f"{name}: {tuple(target[name].shape)} vs {tuple(unlearned[name].shape)}"
        for name in sorted(target)
        if target[name].shape != unlearned[name].shape
    ]
    if shapes:
        raise MixingError(f"cannot mix models of different shapes (target vs unlearned): {'; '.join(shapes[:5])}")


def mix_tensor(target: torch.Tensor, unlearned: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1−α)·target + α·unlearned, computed in float32 and cast back; non-float buffers come from the target."""
    if not target.is_floating_point():
        return target
    mixed = (1 - alpha) * target.float() + alpha * unlearned.to(target.device).float()
    return mixed.to(target.dtype)


def mix_state_dicts(
    target: Mapping[str, torch.Tensor], unlearned: Mapping[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """θ(α) for every tensor; α = 0 returns the target's tensors and α = 1 the unlearned model's, as they are."""
    alpha = check_alpha(alpha)
    check_compatible(target, unlearned)
    if alpha == 0.0:
        return dict(target)
    if alpha == 1.0:
        return dict(unlearned)
    return {name: mix_tensor(target[name], unlearned[name], alpha) for name in target}


class WeightMixer:
    """Sets ``model`` to θ(α) in place, from copies of the target and unlearned weights."""

    def __init__(self, model, target: Mapping[str, torch.Tensor], unlearned: Mapping[str, torch.Tensor]):
        check_compatible(target, unlearned)
        self.model, self.target, self.unlearned = model, target, unlearned

    def __call__(self, alpha: float) -> None:
        self.model.load_state_dict(mix_state_dicts(self.target, self.unlearned, alpha))


class AdapterScaler:
    """Sets a PEFT LoRA model to W + α·ΔW in place by scaling each ``lora_B`` from its trained value."""

    def __init__(self, peft_model):
        self.model = peft_model
        self.trained = {
            name: parameter.detach().clone()
            for name, parameter in peft_model.named_parameters()
            if ".lora_B." in name
        }
        if not self.trained:
            raise MixingError(f"{type(peft_model).__name__} has no LoRA weights (lora_B) to scale")

    @torch.no_grad()
    def __call__(self, alpha: float) -> None:
        alpha = check_alpha(alpha)
        for name, parameter in self.model.named_parameters():
            if name in self.trained:
                parameter.copy_(self.trained[name] if alpha == 1.0 else alpha * self.trained[name])


def state_dict_copy(model, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A detached copy of ``model``'s weights (on ``device``), safe from later in-place changes."""
    return {name: tensor.detach().to(device, copy=True) for name, tensor in model.state_dict().items()}


def is_adapter(path) -> bool:
    """Whether ``path`` is a PEFT adapter folder (has adapter_config.json)."""
    return isinstance(path, (str, Path)) and (Path(path) / ADAPTER_CONFIG).is_file()


def mixer_for(model, unlearned):
    """``(mixed_model, mixer)`` for target ``model`` and an ``unlearned`` checkpoint or adapter folder.

    ``mixer(α)`` sets ``mixed_model`` to θ(α) in place: ``model`` itself for full weights (raises a
    MixingError now if the shapes differ), or a PeftModel around it for an adapter.
    """
    if is_adapter(unlearned):
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(model, str(unlearned))
        return peft_model, AdapterScaler(peft_model)
    other = AutoModelForCausalLM.from_pretrained(str(unlearned), dtype=torch.float32)
    return model, WeightMixer(model, state_dict_copy(model), other.state_dict())


def mix_into(model, unlearned, alpha: float):
    """``model`` (the target) turned into θ(α) in place; α = 0 leaves an adapter unloaded."""
    alpha = check_alpha(alpha)
    if alpha == 0.0 and is_adapter(unlearned):
        return model
    mixed, mixer = mixer_for(model, unlearned)
    mixer(alpha)
    return mixed


@register_model("unlearn_mix")
class MixedHFLM(UnlearnHFLM):
    """``unlearn_hf`` on θ(α), mixed in memory: ``base=<target>,pretrained=<unlearned>,alpha=<α>``.

    The base loads exactly as ``--model hf --model_args pretrained=<target>`` would, so α = 0 scores
    the target and α = 1 the unlearned model (or ``pretrained=<target>,peft=<adapter>``) exactly.
    """

    def __init__(self, base: str, pretrained: str, alpha: float, **kwargs):
        if kwargs.get("peft") or kwargs.get("delta"):
            raise MixingError("unlearn_mix takes the adapter as pretrained=<adapter folder>, not peft= or delta=")
        alpha = check_alpha(alpha)
        super().__init__(pretrained=str(base), **kwargs)
        self.alpha, self.unlearned = alpha, str(pretrained)
        self._model = mix_into(self._model, pretrained, alpha).eval()
