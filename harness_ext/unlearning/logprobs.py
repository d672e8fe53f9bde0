"""The pieces every loss shares: answer-token log-probs, CE, sequence log-probs, KL, layer activations,
and the frozen reference model.

Position ``t`` of the logits predicts token ``t + 1``; the answer tokens are those whose label is
not -100, so every quantity here is over answer tokens only, as the tasks score them.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from harness_ext.unlearning.batches import IGNORE, Batch
from harness_ext.unlearning.config import UnlearnError


def logits_of(model, batch: Batch) -> torch.Tensor:
    """``[batch, length, vocab]`` next-token logits."""
    return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits


def token_logprobs(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(answer token), mask)``, both ``[batch, length - 1]``; masked positions hold 0."""
    labels = batch.labels[:, 1:]
    mask = labels != IGNORE
    nll = F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, reduction="none"
    )
    return -nll.view_as(labels), mask


def sequence_logprob(logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ log p(answer tokens), answer length)`` per sequence."""
    logprobs, mask = token_logprobs(logits, batch)
    return logprobs.sum(-1), mask.sum(-1)


def mean_nll(logits: torch.Tensor, batch: Batch, bound: float | None = None) -> torch.Tensor:
    """CE: the mean answer-token NLL over the batch.

    With ``bound`` δ (bounded gradient ascent), sequences whose own mean NLL exceeds δ are left out of
    the numerator (they give no gradient); the denominator stays the batch's answer-token count.
    """
    logprobs, mask = token_logprobs(logits, batch)
    nll = -logprobs
    if bound is not None:
        per_sequence = nll.sum(-1) / mask.sum(-1).clamp_min(1)
        nll = nll * (per_sequence <= bound).unsqueeze(-1).detach()
    return nll.sum() / mask.sum().clamp_min(1)


def answer_ce(model, batch: Batch, bound: float | None = None) -> torch.Tensor:
    """CE of ``model`` on ``batch`` (see :func:`mean_nll`)."""
    return mean_nll(logits_of(model, batch), batch, bound)


def kl_divergence(reference_logits: torch.Tensor, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """KL(p_ref ‖ p_θ) of the next-token distributions, averaged over answer-token positions."""
    mask = (batch.labels[:, 1:] != IGNORE).flatten()
    reference = F.log_softmax(reference_logits[:, :-1].flatten(0, 1)[mask].float(), dim=-1)
    current = F.log_softmax(logits[:, :-1].flatten(0, 1)[mask].float(), dim=-1)
    return F.kl_div(current, reference, log_target=True, reduction="batchmean")


def model_config(model):
    """The ``PretrainedConfig`` of a (possibly wrapped: DDP, PEFT) model."""
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "num_hidden_layers", None) is not None:
            return config
    raise UnlearnError(f"{type(model).__name__} has no config with num_hidden_layers")


def decoder_layers(model) -> nn.ModuleList:
    """The model's list of transformer blocks (the ModuleList as long as ``num_hidden_layers``)."""
    count = model_config(model).num_hidden_layers
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    raise UnlearnError(f"could not find the {count} decoder layers of {type(model).__name__}")


def layer_output(model, batch: Batch, layer: int) -> torch.Tensor:
    """``[batch, length, hidden]`` output of decoder layer ``layer`` (0-based) on ``batch``."""
    captured = []

    def keep(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = decoder_layers(model)[layer].register_forward_hook(keep)
    try:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    finally:
        handle.remove()
    return captured[0]


class Reference:
    """The model as it was when unlearning started, evaluated without gradients.

    Full fine-tuning keeps a frozen copy; a PEFT model is its own reference with the adapter disabled
    (no copy). Call :meth:`to` once the training device is known.
    """

    def __init__(self, model):
        from peft import PeftModel

        self.adapter_model = model if isinstance(model, PeftModel) else None
        self.frozen = None if self.adapter_model is not None else copy.deepcopy(model).eval().requires_grad_(False)

    def to(self, device) -> "Reference":
        if self.frozen is not None:
            self.frozen.to(device)
        return self

    def _model_and_context(self):
        if self.adapter_model is not None:
            return self.adapter_model, self.adapter_model.disable_adapter()
        return self.frozen, nullcontext()

    @torch.no_grad()
    def logits(self, batch: Batch) -> torch.Tensor:
        model, context = self._model_and_context()
        with context:
            return logits_of(model, batch)

    @torch.no_grad()
    def layer_output(self, batch: Batch, layer: int) -> torch.Tensor:
        model, context = self._model_and_context()
        with context:
            return layer_output(model, batch, layer)
