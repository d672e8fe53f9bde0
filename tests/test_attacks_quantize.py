"""quantize: 8-bit weights within one quantisation step of the original, 4-bit further away, and the
quantised model still scores through the tasks (bitsandbytes on CPU)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from harness_ext.attacks.quantize import dequantized_weight, quantised_linears, quantize, quantized
from harness_ext.unlearning.config import UnlearnError

pytest.importorskip("bitsandbytes")


def _linear_pairs(original, attacked):
    """(original nn.Linear, quantised layer) pairs."""
    modules = dict(original.named_modules())
    pairs = [(modules[name], layer) for name, layer in quantised_linears(attacked).items()]
    assert len(pairs) == 7 * original.config.num_hidden_layers  # q, k, v, o, gate, up, down
    return pairs


@pytest.fixture(scope="module")
def original(memorised_model):
    return AutoModelForCausalLM.from_pretrained(memorised_model, dtype=torch.float32)


@pytest.fixture(scope="module")
def errors(memorised_model, original):
    """Per bit width: the mean absolute weight error over every quantised linear layer."""
    result = {}
    for bits in (8, 4):
        pairs = _linear_pairs(original, quantized(memorised_model, bits))
        result[bits] = torch.cat([(dequantized_weight(q) - o.weight).abs().flatten() for o, q in pairs]).mean().item()
    return result


def test_8bit_weights_within_one_quantisation_step(memorised_model, original):
    pairs = _linear_pairs(original, quantized(memorised_model, 8))
    for linear, quantised in pairs:
        step = linear.weight.abs().amax(dim=1, keepdim=True) / 127
        difference = (dequantized_weight(quantised) - linear.weight).abs()
        assert (difference <= step).all()
        assert difference.max() > 0  # the weights really were quantised


def test_4bit_differs_more_than_8bit(errors):
    assert errors[4] > 2 * errors[8] > 0


def test_quantised_checkpoint_reloads_and_scores(memorised_model, tmp_path):
    from harness_ext.evaluation import evaluate
    from harness_ext.models import UnlearnHFLM

    before = {path.name: path.read_bytes() for path in memorised_model.iterdir() if path.is_file()}
    out = quantize(memorised_model, tmp_path / "q8", bits=8)
    assert {path.name: path.read_bytes() for path in memorised_model.iterdir() if path.is_file()} == before
    assert json.loads((out / "control.json").read_text())["bits"] == 8
    samples = {"unlearn_tofu_forget01": [0, 1, 2]}
    scores = {}
    for folder in (memorised_model, out):
        lm = UnlearnHFLM(pretrained=str(folder), batch_size=4, device="cpu")
        scores[folder] = evaluate(lm, list(samples), samples=samples, env_info=False)["results"]["unlearn_tofu_forget01"]
    clean, attacked = scores[memorised_model]["prob,none"], scores[out]["prob,none"]
    assert clean > 0.5  # the memorised answers survive 8 bits on this model
    assert attacked == pytest.approx(clean, abs=0.15) and attacked != clean


def test_bad_bits_are_refused(memorised_model, tmp_path):
    with pytest.raises(UnlearnError, match="bits must be one of 8, 4"):
        quantize(memorised_model, tmp_path / "q", bits=3)
