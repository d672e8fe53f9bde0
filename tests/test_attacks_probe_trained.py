"""unlearn_probe with head=trained: the fresh head fits the retain set better than the logit lens,
and the frozen body is left exactly as it was."""

from __future__ import annotations

import torch

from harness_ext.models.probe import probed
from tests.test_attacks_probe import _answer_nll, _load
from unlearn_tasks.tofu.data import load_tofu


def test_trained_head_fits_the_retain_set_better_than_the_lens(memorised_model, tofu_data_dir):
    retain = list(load_tofu("retain_perturbed"))[:24]
    model, tokenizer = _load(memorised_model)
    lens = _answer_nll(probed(model, 1), tokenizer, retain)
    model, tokenizer = _load(memorised_model)
    before = {name: tensor.clone() for name, tensor in model.model.layers[0].state_dict().items()}
    trained_model = probed(model, 1, "trained", tokenizer=tokenizer, rows=retain, steps=30, lr=3e-3)
    trained = _answer_nll(trained_model, tokenizer, retain)
    assert trained < lens - 0.2
    for name, tensor in trained_model.model.layers[0].state_dict().items():
        assert torch.equal(tensor, before[name]), f"the frozen body changed: {name}"
    assert trained_model.lm_head.weight.data_ptr() != trained_model.model.embed_tokens.weight.data_ptr()
