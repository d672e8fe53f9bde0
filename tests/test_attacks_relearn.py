"""relearn: the forget-set loss falls after relearning, and the input checkpoint is left as it was."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness_ext.attacks.relearn import relearn
from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from harness_ext.unlearning.config import UnlearnError
from unlearn_tasks.prompts import training_text
from unlearn_tasks.tofu.data import load_tofu


def _fingerprint(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


@torch.no_grad()
def _forget_loss(folder, rows) -> float:
    """Mean NLL per answer token, computed directly (prompt as the tasks)."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    total, count = 0.0, 0
    for row in rows:
        prompt, target = training_text(row["question"], row["answer"])
        ids = tokenizer(prompt + target)["input_ids"]
        start = len(tokenizer(prompt)["input_ids"])
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], dim=-1)
        targets = torch.tensor(ids[start:])
        total -= logprobs[start - 1:].gather(1, targets.unsqueeze(1)).sum().item()
        count += len(targets)
    return total / count


@pytest.fixture(scope="module")
def unlearned(tofu_data_dir, tmp_path_factory):
    """A small random model standing in for an unlearned checkpoint; control.json names its forget set."""
    rows = list(load_tofu("forget01_perturbed"))
    folder = tmp_path_factory.mktemp("relearn") / "unlearned"
    build_tiny_model(tofu_texts(rows), folder, vocab_size=1024, hidden_size=32, layers=2, seed=0)
    (folder / "control.json").write_text(json.dumps({"method": "ga", "data": {"forget": "tofu:forget01"}}))
    return folder


def test_relearning_lowers_the_forget_loss_and_leaves_the_input_alone(unlearned, tmp_path):
    rows = list(load_tofu("forget01"))
    before = _fingerprint(unlearned)
    out = relearn(unlearned, tmp_path / "relearned", lr=3e-3, seed=0)  # default data: the forget set, one epoch
    assert _fingerprint(unlearned) == before
    record = json.loads((out / "control.json").read_text())
    assert record["attack"] == "relearn" and record["data"] == "tofu:forget01" and record["source"]["method"] == "ga"
    assert _forget_loss(out, rows) < _forget_loss(unlearned, rows) - 0.2  # 6.94 → 6.59 nats per token here


def test_relearning_is_seeded(unlearned, tmp_path):
    runs = [relearn(unlearned, tmp_path / f"run{i}", data=list(load_tofu("forget01"))[:8], steps=2, lr=1e-3, seed=1)
            for i in range(2)]
    assert _fingerprint(runs[0])["model.safetensors"] == _fingerprint(runs[1])["model.safetensors"]


def test_a_checkpoint_without_a_forget_set_needs_data(unlearned, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in unlearned.iterdir():
        if path.name != "control.json":
            (plain / path.name).write_bytes(path.read_bytes())
    with pytest.raises(UnlearnError, match="records no forget set"):
        relearn(plain, tmp_path / "out")
