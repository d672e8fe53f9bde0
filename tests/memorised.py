"""A tiny Llama that memorises TOFU forget01 and some retain questions: the oracle tests' model.

Trained with its own short loop (independent of the unlearning module), cached by folder.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch

from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from unlearn_tasks.prompts import training_text
from unlearn_tasks.tofu.data import load_tofu

RETAIN_QUESTIONS = 40
EPOCHS = 60
VERSION = 3  # bump when the recipe changes: the cached model is keyed by it


def training_rows() -> list[dict]:
    return list(load_tofu("forget01")) + list(load_tofu("retain_perturbed"))[:RETAIN_QUESTIONS]


def train_memorised_model(folder: Path, seed: int = 0) -> Path:
    if (folder / "model.safetensors").exists():
        return folder
    rows = training_rows()
    # A vocabulary rich enough that multi-byte characters and words with their leading space are
    # single tokens, as in real tokenizers (the plain-lm_eval fallback path relies on it).
    configs = ("forget01_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")
    vocabulary_rows = [row for config in configs for row in load_tofu(config)]
    model, tokenizer = build_tiny_model(tofu_texts(vocabulary_rows), vocab_size=4096, hidden_size=64, layers=2, seed=seed)
    _train(model, tokenizer, rows, seed)
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def _examples(tokenizer, rows):
    examples = []
    for row in rows:
        prompt, target = training_text(row["question"], row["answer"])
        whole = tokenizer.encode(prompt + target) + [tokenizer.eos_token_id]  # learn to stop
        labels = list(whole)
        labels[: len(tokenizer.encode(prompt))] = [-100] * len(tokenizer.encode(prompt))
        examples.append((whole, labels))
    return examples


def _train(model, tokenizer, rows, seed):
    torch.manual_seed(seed)
    order = random.Random(seed)
    examples = _examples(tokenizer, rows)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(EPOCHS):
        order.shuffle(examples)
        for start in range(0, len(examples), 16):
            batch = examples[start:start + 16]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
    model.eval()
