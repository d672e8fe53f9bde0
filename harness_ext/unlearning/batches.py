"""Tokenised question/answer pairs, padded batches, and forget/retain batch pairing.

Tokenisation is lm-eval's: ``encode(prompt + target)`` with the tokenizer's own special-token
default, split at ``len(encode(prompt))``; the answer tokens are the labels, the question tokens
are masked with -100. Nothing is appended (no EOS), as the tasks score no EOS. Sequences longer
than ``max_length`` lose their end (right truncation). Plain-text rows (``{text}``) are trained on
every token: the text is tokenised once and cut into consecutive ``max_length``-token chunks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from harness_ext.unlearning.config import UnlearnError
from unlearn_tasks.prompts import training_text

IGNORE = -100


@dataclass
class Example:
    """One tokenised (question, answer) pair."""

    input_ids: list[int]
    labels: list[int]


def encode_pair(tokenizer, question: str, answer: str, max_length: int) -> Example:
    """The tokens of ``prompt + target`` and labels that keep only the answer tokens."""
    prompt, target = training_text(question, answer)
    whole = tokenizer(prompt + target)["input_ids"]
    prompt_length = len(tokenizer(prompt)["input_ids"])
    if prompt_length >= min(len(whole), max_length):
        raise UnlearnError(
            f"no answer tokens left for question {question!r} (prompt {prompt_length} tokens, "
            f"max_length {max_length}); raise --max-length or check the answer is not empty"
        )
    whole = whole[:max_length]
    labels = [IGNORE] * prompt_length + whole[prompt_length:]
    return Example(whole, labels)


def encode_text(tokenizer, text: str, max_length: int) -> list[Example]:
    """A plain text as consecutive ``max_length``-token chunks, every token a label (chunks of one token are dropped)."""
    ids = tokenizer(text)["input_ids"]
    chunks = [ids[start:start + max_length] for start in range(0, len(ids), max_length)]
    return [Example(chunk, list(chunk)) for chunk in chunks if len(chunk) > 1]


def encode_rows(tokenizer, rows, max_length: int) -> list[Example]:
    """Rows with ``question`` and ``answer`` (:func:`encode_pair`) or ``text`` (:func:`encode_text`)."""
    examples = []
    for row in rows:
        if "question" in row:
            examples.append(encode_pair(tokenizer, row["question"], str(row["answer"]), max_length))
        else:
            examples.extend(encode_text(tokenizer, row["text"], max_length))
    if not examples:
        raise UnlearnError("no trainable tokens in the data (every text is shorter than two tokens)")
    return examples


@dataclass
class Batch:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (pads are -100)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def to(self, device, non_blocking: bool = False) -> "Batch":
        return Batch(*(tensor.to(device, non_blocking=non_blocking) for tensor in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.input_ids, self.attention_mask, self.labels

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())


def collate(examples: list[Example], pad_id: int) -> Batch:
    """Pad ``examples`` on the right to the longest one."""
    width = max(len(example.input_ids) for example in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, example in enumerate(examples):
        length = len(example.input_ids)
        input_ids[row, :length] = torch.tensor(example.input_ids)
        attention_mask[row, :length] = 1
        labels[row, :length] = torch.tensor(example.labels)
    return Batch(input_ids, attention_mask, labels)


@dataclass
class StepBatch:
    """What one unlearning step sees: forget, a random retain batch, and (IdkPO) refusals to the forget questions."""

    forget: Batch
    retain: Batch
    refusal: Batch | None = None

    def to(self, device, non_blocking: bool = False) -> "StepBatch":
        moved = [part.to(device, non_blocking) if part is not None else None for part in self.parts()]
        return StepBatch(*moved)

    def parts(self) -> tuple[Batch | None, ...]:
        return self.forget, self.retain, self.refusal

    @property
    def num_tokens(self) -> int:
        return sum(part.num_tokens for part in self.parts() if part is not None)


def pad_id_of(tokenizer) -> int:
    """The id used for padding: pad, else eos, else 0 (padded positions are masked anyway)."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    return 0


class PairingCollator:
    """Builds a :class:`StepBatch` from forget indices: each forget batch gets a random retain batch.

    With refusals, each forget question is paired with a random refusal (IdkPO's preferred answer).
    The draws come from ``random.Random(seed)``, so a seed fixes the pairing.
    """

    def __init__(self, tokenizer, forget_rows, forget, retain, *, refusals=None, seed=0, max_length=512):
        self.tokenizer, self.forget_rows, self.forget, self.retain = tokenizer, forget_rows, forget, retain
        self.refusals, self.max_length = refusals, max_length
        self.rng = random.Random(seed)
        self.pad_id = pad_id_of(tokenizer)

    def __call__(self, indices: list[int]) -> StepBatch:
        retain = self.rng.sample(range(len(self.retain)), k=min(len(indices), len(self.retain)))
        refusal = None
        if self.refusals is not None:
            questions = [self.forget_rows[index]["question"] for index in indices]
            pairs = [encode_pair(self.tokenizer, q, self.rng.choice(self.refusals), self.max_length) for q in questions]
            refusal = collate(pairs, self.pad_id)
        return StepBatch(
            forget=collate([self.forget[index] for index in indices], self.pad_id),
            retain=collate([self.retain[index] for index in retain], self.pad_id),
            refusal=refusal,
        )


def shuffled_loader(size: int, batch_size: int, seed: int, collate_fn) -> DataLoader:
    """Shuffled batches of indices ``0..size-1`` (seeded), turned into batches by ``collate_fn``."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(range(size), batch_size=batch_size, shuffle=True, generator=generator, collate_fn=collate_fn)


def finetune_loader(tokenizer, rows, batch_size: int, seed: int, max_length: int) -> DataLoader:
    """Shuffled padded batches of ``rows`` for plain fine-tuning."""
    examples = encode_rows(tokenizer, rows, max_length)
    pad_id = pad_id_of(tokenizer)
    return shuffled_loader(len(examples), batch_size, seed, lambda idx: collate([examples[i] for i in idx], pad_id))


def unlearn_loader(tokenizer, forget_rows, retain_rows, batch_size, seed, max_length, refusals=None) -> DataLoader:
    """Shuffled forget batches, each paired with a random retain batch (and refusals when given)."""
    collator = PairingCollator(
        tokenizer, forget_rows,
        encode_rows(tokenizer, forget_rows, max_length), encode_rows(tokenizer, retain_rows, max_length),
        refusals=refusals, seed=seed, max_length=max_length,
    )
    return shuffled_loader(len(collator.forget), batch_size, seed, collator)
