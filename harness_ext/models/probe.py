"""``unlearn_probe``: the answer read from an intermediate layer ℓ, scored by every task.

    unlearn-bench eval --model unlearn_probe --model_args pretrained=CKPT,layer=-4 --tasks unlearn_tofu_forget01
    unlearn-bench eval --model unlearn_probe --model_args pretrained=CKPT,layer=-4,head=trained --tasks ...

The decoder blocks after ℓ are removed, so the output of block ℓ goes straight to the final norm and
the output head; scoring and generation both read layer ℓ. ``layer`` counts like transformers'
``hidden_states``: 1..L is block ℓ's output, −1 the last block (the unprobed model itself), −4 block L−3.

* ``head=lens`` (default): the logit lens — the model's own final norm and output head, no training.
* ``head=trained``: the "enhanced logit lens" — a copy of the final norm and output head (untied from
  the embeddings) trained for ``head_steps`` AdamW steps at ``head_lr`` on ``head_data`` (NLL on the
  answers, the unlearning module's training loop) with the body frozen. ``head_data`` defaults to the
  retain set the checkpoint's control.json names.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from lm_eval.api.registry import register_model

from harness_ext.models.hf import UnlearnHFLM
from unlearn_tasks.errors import UnlearnBenchError

HEADS = ("lens", "trained")


class ProbeError(UnlearnBenchError, ValueError):
    """A layer or head the model cannot be probed with."""


def probed(model, layer: int, head: str = "lens", *, tokenizer=None, rows=None, steps: int = 100,
           lr: float = 1e-3, seed: int = 0):
    """``model`` (changed in place and returned) reading its answer from block ``layer``.

    ``head="trained"`` needs ``tokenizer`` and ``rows`` (``tofu:<config>`` or dicts with question/answer).
    """
    if head not in HEADS:
        raise ProbeError(f"unknown probe head {head!r}; known: {', '.join(HEADS)}")
    _truncate(model, layer)
    if head == "trained":
        if tokenizer is None or rows is None:
            raise ProbeError("head=trained needs the tokenizer and training rows (head_data=tofu:<config>)")
        _train_head(model, tokenizer, rows, steps, lr, seed)
    return model.eval()


def _truncate(model, layer: int) -> None:
    """Keep decoder blocks 1..ℓ (``layer`` as in ``hidden_states``: 1..L or −L..−1)."""
    decoder = model.get_decoder()
    blocks = getattr(decoder, "layers", None)
    if not isinstance(blocks, torch.nn.ModuleList) or not hasattr(decoder, "norm"):
        raise ProbeError(f"cannot probe {type(model).__name__}: expected a decoder with .layers and .norm (Llama-like)")
    count = len(blocks)
    if isinstance(layer, bool) or not isinstance(layer, int) or not (1 <= layer <= count or -count <= layer <= -1):
        raise ProbeError(f"layer must be an integer in 1..{count} or -{count}..-1 for this model, got {layer!r}")
    keep = layer if layer > 0 else count + 1 + layer
    decoder.layers = torch.nn.ModuleList(blocks[:keep])
    model.config.num_hidden_layers = keep
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:keep]


def _train_head(model, tokenizer, rows, steps: int, lr: float, seed: int) -> None:
    """Replace the final norm and output head by trainable copies and fit them, everything else frozen."""
    from harness_ext.unlearning.api import finetune_model

    decoder = model.get_decoder()
    output = model.get_output_embeddings()
    decoder.norm = copy.deepcopy(decoder.norm)
    fresh = torch.nn.Linear(output.in_features, output.out_features, bias=output.bias is not None)
    fresh.load_state_dict({name: tensor.detach().clone() for name, tensor in output.state_dict().items()})
    model.set_output_embeddings(fresh.to(output.weight.device, output.weight.dtype))
    model.config.tie_word_embeddings = False
    model.requires_grad_(False)
    for module in (decoder.norm, fresh):
        module.requires_grad_(True)
    finetune_model(model, rows, tokenizer=tokenizer, steps=steps, lr=lr, seed=seed)
    model.requires_grad_(False)


def retain_spec(checkpoint) -> str:
    """The retain data a checkpoint was unlearned with (its control.json), for ``head_data``'s default."""
    if not isinstance(checkpoint, (str, Path)):
        raise ProbeError("head=trained on an in-memory model needs head_data=tofu:<config> (or rows)")
    path = Path(checkpoint) / "control.json"
    spec = json.loads(path.read_text(encoding="utf-8")).get("data", {}).get("retain") if path.is_file() else None
    if not spec:
        raise ProbeError(f"head=trained: {checkpoint} records no retain data (control.json); pass head_data=tofu:<config>")
    return spec


@register_model("unlearn_probe")
class ProbeHFLM(UnlearnHFLM):
    """``unlearn_hf`` (same per-token details) on the model probed at ``layer`` with ``head``."""

    def __init__(self, *args, layer=None, head: str = "lens", head_steps: int = 100, head_lr: float = 1e-3,
                 head_data: str | None = None, head_seed: int = 0, **kwargs):
        if layer is None:
            raise ProbeError("unlearn_probe needs layer=ℓ in --model_args (e.g. layer=-4)")
        if head not in HEADS:
            raise ProbeError(f"unknown probe head {head!r}; known: {', '.join(HEADS)}")
        rows = None
        if head == "trained":
            rows = head_data or retain_spec(kwargs.get("pretrained"))
        super().__init__(*args, **kwargs)
        probed(self._model, layer, head, tokenizer=self.tokenizer, rows=rows, steps=int(head_steps),
               lr=float(head_lr), seed=int(head_seed))
