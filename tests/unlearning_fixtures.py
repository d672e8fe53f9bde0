"""Helpers for the unlearning tests: the memorised model's data, an independent NLL, parsers.

The target model is conftest's ``memorised_model`` (a tiny Llama trained by its own loop on TOFU
forget01 + 40 retain questions). NLLs here are computed one row at a time with plain tensor
code, independently of ``harness_ext.unlearning``'s batching and loss helpers.
"""

from __future__ import annotations

import argparse

import torch

from harness_ext.unlearning.checkpoint import load_model
from unlearn_tasks.prompts import training_text
from unlearn_tasks.tofu.data import load_refusals, load_tofu

RETAIN_QUESTIONS = 40  # the retain questions the memorised model was trained on


def forget_rows() -> list[dict]:
    return [{"question": row["question"], "answer": row["answer"]} for row in load_tofu("forget01")]


def retain_rows() -> list[dict]:
    rows = list(load_tofu("retain_perturbed"))[:RETAIN_QUESTIONS]
    return [{"question": row["question"], "answer": row["answer"]} for row in rows]


def refusal_rows(count: int = 5) -> list[dict]:
    """Each forget question with each of the first ``count`` refusals."""
    refusals = load_refusals()[:count]
    return [{"question": row["question"], "answer": refusal} for row in forget_rows() for refusal in refusals]


@torch.no_grad()
def answer_nll(model, tokenizer, rows) -> float:
    """Mean over rows of the mean answer-token NLL, one row at a time."""
    model.eval()
    values = []
    for row in rows:
        prompt, target = training_text(row["question"], row["answer"])
        ids = tokenizer(prompt + target)["input_ids"]
        start = len(tokenizer(prompt)["input_ids"])
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits[start - 1:-1], dim=-1)
        answer = torch.tensor(ids[start:])
        values.append(-logprobs[torch.arange(len(answer)), answer].mean().item())
    return sum(values) / len(values)


def load(path):
    """``(model, tokenizer)`` of a checkpoint folder."""
    model, tokenizer, _ = load_model(str(path))
    return model, tokenizer


def parsed(add_arguments, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by a parser that ``add_arguments`` filled."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def same_weights(first, second) -> bool:
    """Bit-identical state dicts."""
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
