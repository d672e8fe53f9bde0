"""``ppl_ref``: perplexity of the generations under a reference model (metadata ``fluency_ref``).

Computed inside the task's corpus aggregation: lm-eval hands it every document's (prompt, generation),
and the reference checkpoint is loaded there with transformers, used, and released. Each generation is
scored as the continuation of its prompt (the same conditioning the evaluated model had), tokenised as
lm-eval does: the reference tokenizer encodes ``prompt`` and ``prompt + generation`` (its default special
tokens included) and the generation's tokens are those after the prompt's. Corpus perplexity:
``exp(sum of generation-token NLLs / number of generation tokens)``; empty generations contribute nothing.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F

from unlearn_tasks.errors import MetadataError

logger = logging.getLogger(__name__)

BATCH_SIZE = 8


def reference_perplexity(items: list[dict], checkpoint: str | None, batch_size: int = BATCH_SIZE) -> float:
    """Token-weighted perplexity of ``items`` ({"context", "generation"}) under ``checkpoint``."""
    if not checkpoint:
        raise MetadataError("ppl_ref needs metadata fluency_ref (a Hugging Face checkpoint path or id)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).to(device).eval()
    except (OSError, ValueError) as error:  # no such checkpoint; a folder without a usable tokenizer
        raise MetadataError(f"fluency_ref {checkpoint!r} cannot be loaded as a causal LM checkpoint: {error}") from None
    encoded = [_encode(tokenizer, item["context"], item["generation"]) for item in items]
    encoded = [(tokens, count) for tokens, count in encoded if count > 0]
    if not encoded:
        logger.warning("ppl_ref is NaN: every generation is empty")
        return math.nan
    total_nll = 0.0
    for start in range(0, len(encoded), batch_size):
        total_nll += _batch_nll(model, encoded[start:start + batch_size], device)
    total_tokens = sum(count for _, count in encoded)
    return math.exp(total_nll / total_tokens)


def _encode(tokenizer, context: str, generation: str) -> tuple[list[int], int]:
    """(prompt + generation token ids, number of generation tokens at their end)."""
    whole = tokenizer(context + generation).input_ids
    count = len(whole) - len(tokenizer(context).input_ids)
    return whole, max(0, min(count, len(whole) - 1))


@torch.no_grad()
def _batch_nll(model, batch: list[tuple[list[int], int]], device: str) -> float:
    """Sum over the batch of the generation tokens' negative log-likelihoods (right padding, masked)."""
    width = max(len(tokens) for tokens, _ in batch)
    inputs = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (tokens, _) in enumerate(batch):
        inputs[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device)).logits.float()
    logprobs = F.log_softmax(logits[:, :-1], dim=-1).gather(-1, inputs[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
    total = 0.0
    for row, (tokens, count) in enumerate(batch):
        total -= float(logprobs[row, len(tokens) - 1 - count : len(tokens) - 1].double().sum())
    return total
