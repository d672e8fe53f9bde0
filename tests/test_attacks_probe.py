"""unlearn_probe: the logit lens at the last layer is the model itself; a trained head beats the lens."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness_ext.models.probe import ProbeError, ProbeHFLM, probed
from unlearn_tasks.prompts import training_text

SAMPLES = {"unlearn_tofu_forget01": [0, 1, 2]}


def _scores(lm):
    from harness_ext.evaluation import evaluate

    return evaluate(lm, list(SAMPLES), samples=SAMPLES, env_info=False)["results"]["unlearn_tofu_forget01"]


@torch.no_grad()
def _answer_nll(model, tokenizer, rows) -> float:
    """Mean NLL per answer token, computed directly."""
    total, count = 0.0, 0
    for row in rows:
        prompt, target = training_text(row["question"], row["answer"])
        ids = tokenizer(prompt + target)["input_ids"]
        start = len(tokenizer(prompt)["input_ids"])
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), dim=-1)
        targets = torch.tensor(ids[start:])
        total -= logprobs[start - 1:].gather(1, targets.unsqueeze(1)).sum().item()
        count += len(targets)
    return total / count


def _load(folder):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(folder)


def test_lens_at_the_last_layer_reproduces_the_model_exactly(memorised_model):
    from harness_ext.models import UnlearnHFLM

    own = _scores(UnlearnHFLM(pretrained=str(memorised_model), batch_size=4, device="cpu"))
    lens = _scores(ProbeHFLM(pretrained=str(memorised_model), layer=-1, batch_size=4, device="cpu"))
    keys = [key for key in own if key.endswith(",none") and key != "forget_quality,none"]
    assert {key: lens[key] for key in keys} == {key: own[key] for key in keys}
    assert own["es,none"] > 0.5  # a memorising model: the comparison is not between two zeros


def test_lens_at_an_earlier_layer_drops_the_later_blocks(memorised_model):
    model, _ = _load(memorised_model)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        hidden = model(ids, output_hidden_states=True).hidden_states[1]
        expected = model.lm_head(model.model.norm(hidden))
        probe = probed(model, 1)
        assert len(probe.model.layers) == probe.config.num_hidden_layers == 1
        torch.testing.assert_close(probe(ids).logits, expected)


@pytest.mark.parametrize("layer", [0, 3, -3, "x"])
def test_layers_outside_the_model_are_refused(memorised_model, layer):
    model, _ = _load(memorised_model)
    with pytest.raises(ProbeError, match=r"layer must be an integer in 1\.\.2 or -2\.\.-1"):
        probed(model, layer)


def test_unknown_head_and_missing_layer_are_refused(memorised_model):
    with pytest.raises(ProbeError, match="known: lens, trained"):
        ProbeHFLM(pretrained=str(memorised_model), layer=-1, head="tuned", device="cpu")
    with pytest.raises(ProbeError, match="needs layer"):
        ProbeHFLM(pretrained=str(memorised_model), device="cpu")
    with pytest.raises(ProbeError, match="records no retain data"):
        ProbeHFLM(pretrained=str(memorised_model), layer=-1, head="trained", device="cpu")


def test_unlearn_bench_eval_finds_the_model():
    """``unlearn-bench eval`` imports harness_ext.models; that alone must register unlearn_probe."""
    import subprocess
    import sys

    code = "import harness_ext.models; from lm_eval.api.registry import get_model; print(get_model('unlearn_probe').__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "ProbeHFLM", done.stderr[-2000:]
