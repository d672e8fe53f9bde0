"""Greedy decoding that stops paying for finished rows: each step forwards only the rows still generating.

``model.generate`` runs a batch until its longest member ends; rows that hit EOS or a stop string keep
being forwarded (their output replaced by padding). :func:`generate_greedy` does the same greedy
steps with the same KV cache, attention mask and position ids as ``generate``, but removes a row from
the batch (and its cache) as soon as it is done, so the work is the decode steps each row needs. The
output has ``generate``'s layout: prompt, new tokens, padding after each row's end.

Used only for plain greedy decoding (no sampling, beams or logits processors, see :func:`plain_greedy`);
anything else goes to ``model.generate``.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

# generation-config fields that make ``generate`` change the logits before its argmax
_LOGITS_CHANGERS = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,), "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "sequence_bias": (None,),
    "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
    "exponential_decay_length_penalty": (None,), "num_beams": (None, 1), "num_return_sequences": (None, 1),
}


def plain_greedy(generation_config, kwargs: dict) -> bool:
    """Whether ``generate`` with this config and these extra kwargs is plain greedy decoding."""
    if set(kwargs) - {"attention_mask", "do_sample"} or kwargs.get("do_sample"):
        return False
    return all(getattr(generation_config, name, None) in allowed for name, allowed in _LOGITS_CHANGERS.items())


class StopCheck:
    """A row is done at an EOS token, or when a stop string appears in its last few new tokens' text
    (lm-eval's ``MultiTokenEOSCriteria`` rule: the stop's token count + 2 tokens of look-back)."""

    def __init__(self, tokenizer, stops: list[str], eos_ids: set[int]):
        self.tokenizer, self.eos_ids = tokenizer, eos_ids
        self.lookback = {stop: len(tokenizer.encode(stop, add_special_tokens=False)) + 2 for stop in stops}

    def done(self, generated: list[int]) -> bool:
        return generated[-1] in self.eos_ids or any(
            stop in self.tokenizer.decode(generated[-count:]) for stop, count in self.lookback.items())


@torch.no_grad()
def generate_greedy(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                    stop: StopCheck, pad_id: int) -> tuple[torch.Tensor, int]:
    """Left-padded prompts → ``(prompt + new tokens, padded)``, and the row-steps actually forwarded."""
    rows, width = input_ids.shape
    output = torch.full((rows, width + max_new_tokens), pad_id, dtype=input_ids.dtype, device=input_ids.device)
    output[:, :width] = input_ids
    generated: list[list[int]] = [[] for _ in range(rows)]
    active = torch.arange(rows, device=input_ids.device)
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    cache, inputs, mask, row_steps, step = DynamicCache(config=model.config), input_ids, attention_mask, 0, 0
    for step in range(max_new_tokens):
        logits = model(input_ids=inputs, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True, logits_to_keep=1).logits
        tokens = logits[:, -1].float().argmax(-1)
        output[active, width + step] = tokens
        row_steps += len(active)
        keep = [i for i, (row, token) in enumerate(zip(active.tolist(), tokens.tolist()))
                if not stop.done(_append(generated[row], token))]
        if not keep:
            break
        if len(keep) < len(active):
            kept = torch.tensor(keep, device=active.device)
            cache.batch_select_indices(kept)
            active, tokens, mask, positions = active[kept], tokens[kept], mask[kept], positions[kept]
        inputs = tokens.unsqueeze(1)
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=-1)
        positions = positions[:, -1:] + 1
    return output[:, : width + step + 1], row_steps


def _append(values: list[int], value: int) -> list[int]:
    values.append(value)
    return values
