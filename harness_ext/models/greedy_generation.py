"""Greedy decoding that stops paying for finished rows: each step forwards only the rows still generating,
and the rows that finish are replaced by the next prompts.

``model.generate`` runs a batch until its longest member ends; rows that hit EOS or a stop string keep
being forwarded (their output replaced by padding), and the next batch waits for the whole batch.
:func:`generate_greedy` does the same greedy steps with the same KV cache, attention mask and position
ids as ``generate``, but removes a row from the batch (and its cache) as soon as it is done and prefills
the next prompts into the free places (their caches left-padded to a common length, the padding
masked), so the work is the decode steps each row needs at a full batch. The output has
``generate``'s layout: prompt, new tokens, padding after each row's end.

Used only for plain greedy decoding (no sampling, beams or logits processors, see :func:`plain_greedy`);
anything else goes to ``model.generate``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import DynamicCache

from harness_ext.models.kv_cache import cache_argument, new_cache, plain_layers

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


#: refill once this fraction of the places is free: each refill copies the KV cache (compaction and
#: concatenation), so refilling one place per step would copy it at almost every step
REFILL_FRACTION = 4


@torch.no_grad()
def generate_greedy(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                    stop: StopCheck, pad_id: int, rows: int | None = None,
                    on_done: Callable[[int], object] | None = None) -> tuple[torch.Tensor, int]:
    """Left-padded prompts → ``(prompt + new tokens, padded)``, and the row-steps actually forwarded.

    At most ``rows`` prompts (default: all) decode together, taken in the given order. A finished row's
    output is final at once; once a quarter of the places are finished (:data:`REFILL_FRACTION`) and the
    model's cache layers are plain (:func:`~harness_ext.models.kv_cache.plain_layers`), the finished rows
    leave the cache and the next prompts are prefilled and join the batch in their places (other caches:
    the batch drains first).
    Without waiting prompts, finished rows leave once they are half the batch.
    ``on_done(n)`` is told each time ``n`` rows finish (a progress bar).
    """
    count, width = input_ids.shape
    output = torch.full((count, width + max_new_tokens), pad_id, dtype=input_ids.dtype, device=input_ids.device)
    output[:, :width] = input_ids
    rows = rows or count
    refill_at, pending, batch, row_steps, longest = max(1, rows // REFILL_FRACTION), list(range(count)), None, 0, 0
    while pending or batch is not None:
        free = rows - (batch.live if batch is not None else 0)
        if pending and (batch is None or (batch.can_join and free >= min(refill_at, len(pending)))):
            taken, pending = pending[:free], pending[free:]
            forwarded = _Rows.prefill(model, input_ids[taken], attention_mask[taken], taken)
        else:
            forwarded, batch = batch.step(model), None
        row_steps += len(forwarded)
        finished = forwarded.record(output, width, max_new_tokens, stop)
        longest = max(longest, forwarded.longest)
        if on_done is not None and finished:
            on_done(finished)
        if not forwarded.live:
            continue
        if batch is None:
            batch = forwarded.compact() if forwarded.live <= len(forwarded) // 2 else forwarded
        else:
            batch = batch.compact().join(forwarded.compact())
    return output[:, : width + longest], row_steps


class _Rows:
    """Rows decoding together: their KV cache (and the forward argument that takes it), the attention
    mask over it, each row's next position, the token each row produced last (not yet in the cache)
    and the new tokens so far."""

    def __init__(self, ids: list[int], cache: DynamicCache, argument: str, mask: torch.Tensor,
                 positions: torch.Tensor, tokens: torch.Tensor):
        self.ids, self.cache, self.argument = ids, cache, argument
        self.mask, self.positions, self.tokens = mask, positions, tokens
        self.generated: list[list[int]] = [[] for _ in ids]
        self.done = [False] * len(ids)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> int:
        """Rows still generating (finished rows stay in the cache until :meth:`compact`)."""
        return self.done.count(False)

    @property
    def longest(self) -> int:
        return max(len(generated) for generated in self.generated)

    @property
    def can_join(self) -> bool:
        """Whether other rows can be concatenated to this cache (plain per-layer key/value tensors)."""
        return plain_layers(self.cache)

    @classmethod
    def prefill(cls, model, input_ids: torch.Tensor, attention_mask: torch.Tensor, ids: list[int]) -> "_Rows":
        first = int(attention_mask.any(0).nonzero()[0])  # columns no row uses are dropped
        input_ids, mask = input_ids[:, first:], attention_mask[:, first:]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        cache, argument = new_cache(model), cache_argument(model)
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                       logits_to_keep=1, **{argument: cache}).logits
        return cls(ids, cache, argument, mask, positions[:, -1:] + 1, logits[:, -1].float().argmax(-1))

    def step(self, model) -> "_Rows":
        """One decoding step: the last tokens go into the cache, the next ones come out."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self), 1))], dim=-1)
        logits = model(input_ids=self.tokens.unsqueeze(1), attention_mask=self.mask, position_ids=self.positions,
                       use_cache=True, logits_to_keep=1, **{self.argument: self.cache}).logits
        self.tokens, self.positions = logits[:, -1].float().argmax(-1), self.positions + 1
        return self

    def record(self, output: torch.Tensor, width: int, max_new_tokens: int, stop: StopCheck) -> int:
        """Write the live rows' new tokens into ``output`` and mark those that are done; how many finished."""
        finished = 0
        for index, (row, token) in enumerate(zip(self.ids, self.tokens.tolist())):
            if self.done[index]:
                continue
            generated = self.generated[index]
            generated.append(token)
            output[row, width + len(generated) - 1] = token
            if len(generated) == max_new_tokens or stop.done(generated):
                self.done[index], finished = True, finished + 1
        return finished

    def compact(self) -> "_Rows":
        """These rows without the finished ones (their cache entries dropped, and the leading columns
        only they used)."""
        keep = [index for index, done in enumerate(self.done) if not done]
        if len(keep) == len(self):
            return self
        kept = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(kept)
        self.mask, self.positions, self.tokens = self.mask[kept], self.positions[kept], self.tokens[kept]
        self.ids, self.generated = [self.ids[i] for i in keep], [self.generated[i] for i in keep]
        self.done = [False] * len(keep)
        unused = int(self.mask.any(0).nonzero()[0])
        if unused and self.can_join:
            self.mask = self.mask[:, unused:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., unused:, :], layer.values[..., unused:, :]
        return self

    def join(self, other: "_Rows") -> "_Rows":
        """These rows and ``other``'s in one batch: the shorter cache is left-padded (masked out)."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for rows in (self, other):
            rows._pad_left(width - rows.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys, mine.values = torch.cat([mine.keys, theirs.keys]), torch.cat([mine.values, theirs.values])
        self.mask, self.positions = torch.cat([self.mask, other.mask]), torch.cat([self.positions, other.positions])
        self.tokens = torch.cat([self.tokens, other.tokens])
        self.ids, self.generated, self.done = self.ids + other.ids, self.generated + other.generated, self.done + other.done
        return self

    def _pad_left(self, extra: int) -> None:
        if extra:
            self.mask = torch.nn.functional.pad(self.mask, (extra, 0))
            for layer in self.cache.layers:
                layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, extra, 0))
                layer.values = torch.nn.functional.pad(layer.values, (0, 0, extra, 0))
