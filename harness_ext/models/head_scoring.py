"""Per-token scores with the output head applied only where a token is scored, in bounded chunks.

A causal LM is its body (token ids → hidden states) and its output head (hidden state → logits over
the full output vocabulary). :class:`HeadScorer` takes a :class:`ContextBatch`: model inputs whose
scored tokens follow a shared context (the seven answers of a TOFU truth-ratio question, the options
of a multiple-choice question). The body runs over each distinct context once, keeping its KV cache,
and then over each input's rest (its *suffix*) on top of its context's cache, as prefix caching does
in serving engines. The hidden states of the positions whose next token is scored are gathered and the
head, a float32 log-softmax and the requested statistics are applied to chunks of positions whose
vocabulary-wide tensors together take about ``chunk_bytes``: the memory for log-probs does not grow
with batch × length × vocabulary. Models whose cache layers are not plain per-layer tensors (e.g.
sliding-window layers) run each input whole instead (same positions, same numbers up to float32
rounding).

Models whose logits are not ``head(body(ids))`` (e.g. soft-capped or scaled logits) are detected by a
one-time check on a few tokens and scored with the full model forward instead (same numbers, the
old memory profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from harness_ext.models.kv_cache import cache_argument, plain_layers

DEFAULT_CHUNK_BYTES = 256 * 2**20  # logits and their float32 temporaries, per chunk of positions
WORKING_COPIES = 4  # vocabulary-wide float32 tensors alive at once: logits, log-probs, probs, centred


@dataclass
class PositionScores:
    """Per scored position: the greedy (argmax) token, and the next-token log p mean/variance (or None)."""

    argmax: list[int]
    means: list[float | None]
    variances: list[float | None]


@dataclass
class ContextBatch:
    """Model inputs as (context, suffix) rows: ``contexts`` holds each distinct context once
    (right-padded), ``suffixes`` each row's input after its context (right-padded; width 0 when no row
    has one), ``row_context`` each row's context.

    The positions scored are each context's last position (shared by its rows), then each row's
    suffix positions, in that order (:meth:`position`).
    """

    contexts: torch.Tensor
    context_lengths: list[int]
    suffixes: torch.Tensor
    suffix_lengths: list[int]
    row_context: list[int]

    @classmethod
    def of(cls, rows: list[tuple[tuple, tuple]], pad: int, device) -> "ContextBatch":
        """From (context, suffix) token-id rows; rows with equal contexts share one."""
        index: dict[tuple, int] = {}
        row_context = [index.setdefault(context, len(index)) for context, _ in rows]
        return cls(_right_padded(list(index), pad, device), [len(context) for context in index],
                   _right_padded([suffix for _, suffix in rows], pad, device), [len(suffix) for _, suffix in rows],
                   row_context)

    def __post_init__(self):
        starts = torch.tensor([0, *self.suffix_lengths]).cumsum(0) + len(self.context_lengths)
        self._suffix_starts = starts.tolist()

    @property
    def size(self) -> int:
        """How many positions are scored."""
        return self._suffix_starts[-1]

    def position(self, row: int, step: int) -> int:
        """The index of ``row``'s ``step``-th scored position (0: its context's last position)."""
        return self.row_context[row] if step == 0 else self._suffix_starts[row] + step - 1


def _right_padded(rows: list[tuple], pad: int, device) -> torch.Tensor:
    padded = torch.full((len(rows), max(map(len, rows), default=0)), pad, dtype=torch.long)
    for row, ids in enumerate(rows):
        padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return padded.to(device)


class HeadScorer:
    """Scores (position, target token) pairs of a :class:`ContextBatch`.

    ``greedy_dtype``: the dtype of the log-softmax whose argmax is the greedy token, as lm-eval's HF
    model computes it (its ``softmax_dtype``, else the model's dtype); log-probs and statistics are
    always float32. ``head_positions`` counts the positions the head was applied to,
    ``moment_positions`` those whose next-token mean/variance were computed, ``context_passes`` and
    ``suffix_passes`` the body's forward passes over contexts and over suffixes on their caches.
    """

    def __init__(self, model, greedy_dtype: torch.dtype | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        self.model = model
        self.greedy_dtype = greedy_dtype
        self.chunk_bytes = chunk_bytes
        self.head_positions = self.moment_positions = self.context_passes = self.suffix_passes = 0
        self._head = model.get_output_embeddings()
        self._split = _body_and_head(model)

    def serves(self, model) -> bool:
        """Whether this scorer was built for ``model`` as it is now (same object, same output head)."""
        return model is self.model and model.get_output_embeddings() is self._head

    @torch.no_grad()
    def score(self, batch: ContextBatch, pairs: list[tuple[int, int]],
              moments: list[bool]) -> tuple[list[float], PositionScores]:
        """Log-probs of ``pairs`` (position index, target token id) and per-position details.

        Positions are indexed as :meth:`ContextBatch.position` says; ``moments``: per position,
        whether its mean/variance is needed (None in the result where not).
        """
        hidden = self._hidden(batch)
        step = max(1, self.chunk_bytes // (WORKING_COPIES * 4 * self._vocabulary_size(hidden)))
        device = hidden.device
        pair_index = torch.tensor([p for p, _ in pairs], dtype=torch.long, device=device)
        pair_target = torch.tensor([t for _, t in pairs], dtype=torch.long, device=device)
        wanted = torch.tensor(moments, dtype=torch.bool, device=device)
        chosen = torch.empty(len(pairs), dtype=torch.float32, device=device)
        argmax = torch.empty(batch.size, dtype=torch.long, device=device)
        means = torch.full((batch.size,), float("nan"), device=device)
        variances = torch.full((batch.size,), float("nan"), device=device)
        for start in range(0, batch.size, step):
            chunk = slice(start, start + step)
            logits = self._logits(hidden[chunk])
            logprobs = F.log_softmax(logits.float(), dim=-1)
            in_chunk = (pair_index >= start) & (pair_index < start + step)
            chosen[in_chunk] = logprobs[pair_index[in_chunk] - start, pair_target[in_chunk]]
            argmax[chunk] = self._greedy(logits, logprobs)
            rows = wanted[chunk].nonzero().squeeze(1)
            self.moment_positions += len(rows)
            if len(rows) == len(logprobs):
                means[chunk], variances[chunk] = _moments(logprobs)
            elif len(rows):
                means[start + rows], variances[start + rows] = _moments(logprobs[rows])
            del logits, logprobs
        keep = wanted.tolist()
        optional = lambda values: [v if k else None for v, k in zip(values.tolist(), keep)]  # noqa: E731
        return chosen.tolist(), PositionScores(argmax.tolist(), optional(means), optional(variances))

    def _hidden(self, batch: ContextBatch) -> torch.Tensor:
        """Hidden states (logits for models scored whole) at the batch's positions, in its order."""
        forward = self.model if self._split is None else self._split[0]
        read = (lambda output: output.logits) if self._split is None else (lambda output: output.last_hidden_state)
        cache = DynamicCache(config=self.model.config)  # one update after the rows are selected: nothing to grow
        if not plain_layers(cache):
            return self._hidden_whole(batch, lambda ids: read(forward(input_ids=ids)))
        self.context_passes += 1
        cached = {cache_argument(forward): cache}
        contexts = read(forward(input_ids=batch.contexts, use_cache=True, **cached))
        ends = torch.tensor(batch.context_lengths, device=contexts.device) - 1
        context_last = contexts[torch.arange(len(ends), device=contexts.device), ends]
        if batch.suffixes.shape[1] == 0:
            return context_last
        self.suffix_passes += 1
        row_context = torch.tensor(batch.row_context, device=contexts.device)
        cache.batch_select_indices(row_context)
        columns = torch.arange(batch.suffixes.shape[1], device=contexts.device)
        suffix_lengths = torch.tensor(batch.suffix_lengths, device=contexts.device)
        context_mask = torch.arange(batch.contexts.shape[1], device=contexts.device) <= ends[row_context, None]
        mask = torch.cat([context_mask, columns < suffix_lengths[:, None]], dim=1).long()
        suffixes = read(forward(input_ids=batch.suffixes, attention_mask=mask, use_cache=True,
                                position_ids=ends[row_context, None] + 1 + columns, **cached))
        return torch.cat([context_last, suffixes[columns < suffix_lengths[:, None]]])

    def _hidden_whole(self, batch: ContextBatch, run) -> torch.Tensor:
        """The same positions from one forward pass over each row's whole input (context + suffix)."""
        starts = [batch.context_lengths[c] for c in batch.row_context]  # each row's suffix starts after its context
        whole = [torch.cat([batch.contexts[c, :start], batch.suffixes[r, :length]])
                 for r, (c, start, length) in enumerate(zip(batch.row_context, starts, batch.suffix_lengths))]
        hidden = run(torch.nn.utils.rnn.pad_sequence(whole, batch_first=True))
        first_row = {c: r for r, c in reversed(list(enumerate(batch.row_context)))}
        picks = [(first_row[c], length - 1) for c, length in enumerate(batch.context_lengths)]
        picks += [(r, start + j) for r, (start, length) in enumerate(zip(starts, batch.suffix_lengths)) for j in range(length)]
        return hidden[torch.tensor([r for r, _ in picks]), torch.tensor([c for _, c in picks])]

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        self.head_positions += hidden.shape[0]
        return hidden if self._split is None else self._split[1](hidden)

    def _vocabulary_size(self, hidden: torch.Tensor) -> int:
        return hidden.shape[-1] if self._split is None else self._split[1].weight.shape[0]

    def _greedy(self, logits: torch.Tensor, logprobs: torch.Tensor) -> torch.Tensor:
        dtype = self.greedy_dtype or logits.dtype
        if dtype == torch.float32:
            return logprobs.argmax(-1)
        return F.log_softmax(logits, dim=-1, dtype=dtype).argmax(-1)


def _moments(logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of log p under p, per row; the variance centred (no E[x²] − E[x]² cancellation).
    Two vocabulary-wide temporaries."""
    probs = logprobs.exp()
    mean = (probs * logprobs).sum(-1)
    centred = logprobs - mean.unsqueeze(-1)
    variance = centred.square_().mul_(probs).sum(-1)
    return mean, variance


def _body_and_head(model):
    """``(body, head)`` when ``head(body(ids).last_hidden_state)`` gives the model's own logits, else None."""
    head = model.get_output_embeddings()
    body = getattr(model, "base_model", None)
    if not isinstance(head, torch.nn.Linear) or body is None or body is model:
        return None
    probe = torch.tensor([[0, 1, 2, 3]], dtype=torch.long, device=head.weight.device).clamp_max(head.weight.shape[0] - 1)
    with torch.no_grad():
        try:
            split = head(body(input_ids=probe).last_hidden_state).float()
        except (AttributeError, TypeError):
            return None
        whole = model(probe, use_cache=False).logits.float()
    if split.shape != whole.shape or not torch.allclose(split, whole, rtol=1e-4, atol=1e-4):
        return None
    return body, head
