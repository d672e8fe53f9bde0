"""Unlearning methods: one loss function each, registered by name, called by the one loop in train.py.

A loss is ``fn(model, step: StepBatch, context: LossContext) -> scalar tensor``. CE is the mean
answer-token NLL; sequence log-probs are sums over answer tokens. Method defaults live in the
registration (``retain_weight`` λ, ``beta`` β, ``gamma`` γ, ``layer`` ℓ, ``steering`` c); see
docs/unlearning.md for each formula's source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from harness_ext.unlearning.batches import Batch, StepBatch
from harness_ext.unlearning.config import UnlearnConfig, UnlearnError, unknown_name_error
from harness_ext.unlearning.logprobs import (
    Reference, answer_ce, decoder_layers, kl_divergence, layer_output, logits_of, sequence_logprob,
)


@dataclass
class LossContext:
    """What a loss needs besides the model and the batch: resolved hyper-parameters and the reference."""

    config: UnlearnConfig
    reference: Reference | None = None


@dataclass(frozen=True)
class Method:
    """A registered unlearning method.

    ``reference``: needs the frozen starting model; ``refusals``: needs IdkPO's refusal batches;
    ``bounded``: has a −CE_f term that ``--ga-bound`` applies to; ``trains``: picks the parameters
    to train (default: all); ``defaults``: the method's hyper-parameter defaults.
    """

    name: str
    loss: Callable
    reference: bool = False
    refusals: bool = False
    bounded: bool = False
    trains: Callable | None = None
    defaults: dict = field(default_factory=dict)


METHODS: dict[str, Method] = {}


def register_method(name: str, *, reference=False, refusals=False, bounded=False, trains=None, **defaults):
    """Decorator: register ``fn`` as the loss of method ``name`` with its hyper-parameter defaults."""

    def decorate(loss: Callable) -> Callable:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        METHODS[name] = Method(name, loss, reference, refusals, bounded, trains, dict(defaults))
        return loss

    return decorate


def get_method(name: str) -> Method:
    """The registered method ``name``; an unknown name raises an error listing the known ones."""
    if name not in METHODS:
        raise unknown_name_error("unlearning method", name, METHODS)
    return METHODS[name]


def retain_term(model, step: StepBatch, context: LossContext) -> torch.Tensor | float:
    """λ·CE_r, skipping the retain forward pass when λ = 0."""
    weight = context.config.retain_weight or 0.0
    return weight * answer_ce(model, step.retain) if weight else 0.0


def log_ratio(model, reference: Reference, batch: Batch) -> torch.Tensor:
    """log p_θ(y|x) − log p_ref(y|x) per sequence."""
    current, _ = sequence_logprob(logits_of(model, batch), batch)
    frozen, _ = sequence_logprob(reference.logits(batch), batch)
    return current - frozen


@register_method("ga", bounded=True)
def gradient_ascent(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """−CE_f."""
    return -answer_ce(model, step.forget, context.config.ga_bound)


@register_method("graddiff", bounded=True, retain_weight=1.0)
def gradient_difference(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """−CE_f + λ·CE_r."""
    return -answer_ce(model, step.forget, context.config.ga_bound) + retain_term(model, step, context)


@register_method("kl", reference=True, bounded=True, retain_weight=1.0)
def kl_minimisation(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """−CE_f + λ·KL(p_ref ‖ p_θ) on the retain answer tokens."""
    divergence = kl_divergence(context.reference.logits(step.retain), logits_of(model, step.retain), step.retain)
    return -answer_ce(model, step.forget, context.config.ga_bound) + context.config.retain_weight * divergence


@register_method("npo", reference=True, beta=0.1, retain_weight=0.0)
def negative_preference(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """−(2/β)·mean log σ(−β·(log p_θ(y|x) − log p_ref(y|x))) on forget, + λ·CE_r."""
    beta = context.config.beta
    ratio = log_ratio(model, context.reference, step.forget)
    return -(2 / beta) * F.logsigmoid(-beta * ratio).mean() + retain_term(model, step, context)


@register_method("simnpo", beta=2.5, gamma=0.0, retain_weight=1.0, forget_weight=0.1375)
def simple_negative_preference(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """w·(−(2/β)·mean log σ(−(β/|y|)·log p_θ(y|x) − γ)) on forget, + λ·CE_r (defaults: the authors' TOFU config)."""
    beta, gamma = context.config.beta, context.config.gamma
    logprob, length = sequence_logprob(logits_of(model, step.forget), step.forget)
    margin = -(beta / length.clamp_min(1)) * logprob - gamma
    forget = -(2 / beta) * F.logsigmoid(margin).mean()
    return context.config.forget_weight * forget + retain_term(model, step, context)


@register_method("idkpo", reference=True, refusals=True, beta=0.1, retain_weight=1.0)
def refusal_preference(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """DPO with a refusal preferred over the forget answer: −mean log σ(β·(r_refusal − r_forget)), + λ·CE_r."""
    preferred = log_ratio(model, context.reference, step.refusal)
    dispreferred = log_ratio(model, context.reference, step.forget)
    preference = -F.logsigmoid(context.config.beta * (preferred - dispreferred)).mean()
    return preference + retain_term(model, step, context)


def rmu_layers(model, layer: int) -> range:
    """Indices ℓ−2..ℓ (clipped at 0) of the blocks whose MLP down-projections RMU trains; checks ℓ is a layer."""
    count = len(decoder_layers(model))
    if not 0 <= layer < count:
        raise UnlearnError(f"--layer {layer} is outside the model's decoder layers 0..{count - 1}")
    return range(max(0, layer - 2), layer + 1)


def rmu_parameters(model, config: UnlearnConfig) -> list[torch.nn.Parameter]:
    """``mlp.down_proj.weight`` of layers ℓ−2..ℓ: the only weights RMU updates (WMDP's layer_ids, param_ids=6)."""
    blocks = decoder_layers(model)
    parameters = []
    for index in rmu_layers(model, config.layer):
        down_proj = getattr(getattr(blocks[index], "mlp", None), "down_proj", None)
        if down_proj is None:
            raise UnlearnError(f"decoder layer {index} of {type(model).__name__} has no .mlp.down_proj for RMU to train")
        parameters.append(down_proj.weight)
    return parameters


def steering_vector(hidden_size: int, seed: int) -> torch.Tensor:
    """u: a fixed random unit vector (uniform entries, normalised, as in the RMU code), drawn from ``seed``."""
    vector = torch.rand(hidden_size, generator=torch.Generator().manual_seed(seed))
    return vector / vector.norm()


def masked_mse(activations: torch.Tensor, target: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hidden units of the non-padding tokens."""
    per_token = (activations.float() - target.float()).square().mean(-1)
    mask = attention_mask.bool()
    return per_token[mask].mean()


@register_method("rmu", reference=True, trains=rmu_parameters, layer=7, steering=6.5, retain_weight=1200.0, lr=5e-5)
def representation_misdirection(model, step: StepBatch, context: LossContext) -> torch.Tensor:
    """MSE(h_ℓ(forget), c·u) + λ·MSE(h_ℓ(retain), h_ℓ^frozen(retain)) over non-padding tokens."""
    config = context.config
    forget = layer_output(model, step.forget, config.layer)
    target = config.steering * steering_vector(forget.shape[-1], config.seed).to(forget.device)
    retain = layer_output(model, step.retain, config.layer)
    frozen = context.reference.layer_output(step.retain, config.layer)
    return masked_mse(forget, target, step.forget.attention_mask) + config.retain_weight * masked_mse(
        retain, frozen, step.retain.attention_mask
    )
