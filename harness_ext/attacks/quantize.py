"""``quantize``: the checkpoint's weights quantised to 8 or 4 bits with bitsandbytes.

Quantisation can bring "unlearned" knowledge back (Zhang et al. 2024, "Catastrophic failure of LLM
unlearning via quantization"). bitsandbytes is used through transformers' ``BitsAndBytesConfig``
because it is maintained, runs on CPU as well as GPU, and its checkpoints reload with plain
``from_pretrained``:

* 8 bits: LLM.int8 — each weight row int8 with its own absmax scale (step = absmax/127);
* 4 bits: NF4 — blocks of 64 weights, 4-bit normal-float codes with one absmax scale per block.

Every linear layer of the decoder is quantised; embeddings and the output head stay as they are
(bitsandbytes' default). Why this library and not optimum-quanto or torchao: docs/robustness.md.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from harness_ext.unlearning.checkpoint import CONTROL_FILE, check_out, save_checkpoint
from harness_ext.unlearning.config import UnlearnError

BITS = (8, 4)
# LLM.int8 logs a warning on every float32 matmul (its activations are quantised through float16).
logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)


def quantization_config(bits: int):
    """transformers' ``BitsAndBytesConfig`` for ``bits`` (8: LLM.int8, 4: NF4 computing in float32)."""
    from transformers import BitsAndBytesConfig

    if bits not in BITS:
        raise UnlearnError(f"quantize: bits must be one of {', '.join(map(str, BITS))}, got {bits!r}")
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)


def quantized(checkpoint, bits: int, device: str = "cpu"):
    """The checkpoint folder loaded with its weights quantised to ``bits`` (in memory)."""
    from transformers import AutoModelForCausalLM

    config = quantization_config(bits)
    if not Path(checkpoint).is_dir():
        raise UnlearnError(f"quantize: checkpoint folder not found: {checkpoint}")
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), quantization_config=config, device_map=device)
    return model.eval()


def quantize(checkpoint, out, *, bits: int, overwrite: bool = False) -> Path:
    """Write the ``bits``-bit quantised checkpoint to ``out`` (reloads with ``from_pretrained``);
    ``checkpoint`` is only read. control.json records the attack and the checkpoint's own record."""
    from transformers import AutoTokenizer

    import bitsandbytes

    quantization_config(bits)
    out = check_out(out, overwrite)
    model = quantized(checkpoint, bits)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    record = {
        "attack": "quantize", "bits": bits, "library": f"bitsandbytes {bitsandbytes.__version__}",
        "scheme": "LLM.int8" if bits == 8 else "NF4", "model": str(checkpoint), "source": _record(checkpoint),
    }
    return save_checkpoint(out, model, tokenizer, record)


def quantised_linears(model) -> dict[str, torch.nn.Module]:
    """The model's bitsandbytes linear layers, by module name."""
    import bitsandbytes

    kinds = (bitsandbytes.nn.Linear8bitLt, bitsandbytes.nn.Linear4bit)
    return {name: module for name, module in model.named_modules() if isinstance(module, kinds)}


def dequantized_weight(module) -> torch.Tensor:
    """A bitsandbytes linear layer's weight as the float matrix it computes with."""
    import bitsandbytes.functional as functional

    weight = module.weight
    if hasattr(weight, "quant_state"):
        return functional.dequantize_4bit(weight.data, weight.quant_state).float()
    return weight.data.float() * weight.SCB.float().unsqueeze(1) / 127


def _record(checkpoint) -> dict:
    path = Path(checkpoint) / CONTROL_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
