"""Per-token scores with the output head applied only where a token is scored, in bounded chunks.

A causal LM is its body (token ids → hidden states) and its output head (hidden state → logits over
the full output vocabulary). :class:`HeadScorer` runs the body once per batch of unique inputs,
gathers the hidden states of the positions whose next token is scored, and applies the head, a
float32 log-softmax and the requested statistics to chunks of positions whose vocabulary-wide
tensors together take about ``chunk_bytes``: the memory for log-probs no longer grows with
batch × length × vocabulary.

Models whose logits are not ``head(body(ids))`` (e.g. soft-capped or scaled logits) are detected by a
one-time check on a few tokens and scored with the full model forward instead (same numbers, the
old memory profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

DEFAULT_CHUNK_BYTES = 256 * 2**20  # logits and their float32 temporaries, per chunk of positions
WORKING_COPIES = 4  # vocabulary-wide float32 tensors alive at once: logits, log-probs, probs, centred


@dataclass
class PositionScores:
    """Per scored position: the greedy (argmax) token, and the next-token log p mean/variance (or None)."""

    argmax: list[int]
    means: list[float | None]
    variances: list[float | None]


class HeadScorer:
    """Scores (row, position, target) triples of a right-padded batch of model inputs.

    ``greedy_dtype``: the dtype of the log-softmax whose argmax is the greedy token, as lm-eval's HF
    model computes it (its ``softmax_dtype``, else the model's dtype); log-probs and statistics are
    always float32. ``head_positions`` counts the positions the head was applied to,
    ``moment_positions`` those whose next-token mean/variance were computed.
    """

    def __init__(self, model, greedy_dtype: torch.dtype | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        self.model = model
        self.greedy_dtype = greedy_dtype
        self.chunk_bytes = chunk_bytes
        self.head_positions = self.moment_positions = 0
        self._head = model.get_output_embeddings()
        self._split = _body_and_head(model)

    def serves(self, model) -> bool:
        """Whether this scorer was built for ``model`` as it is now (same object, same output head)."""
        return model is self.model and model.get_output_embeddings() is self._head

    @torch.no_grad()
    def score(self, inputs: torch.Tensor, positions: list[tuple[int, int]], pairs: list[tuple[int, int]],
              moments: list[bool]) -> tuple[list[float], PositionScores]:
        """Log-probs of ``pairs`` (index into ``positions``, target token id) and per-position details.

        ``positions``: (row, column) whose logits predict the next token; ``moments``: per position,
        whether its mean/variance is needed (None in the result where not).
        """
        hidden = self._hidden(inputs, positions)
        step = max(1, self.chunk_bytes // (WORKING_COPIES * 4 * self._vocabulary_size(hidden)))
        device = hidden.device
        pair_index = torch.tensor([p for p, _ in pairs], dtype=torch.long, device=device)
        pair_target = torch.tensor([t for _, t in pairs], dtype=torch.long, device=device)
        wanted = torch.tensor(moments, dtype=torch.bool, device=device)
        chosen = torch.empty(len(pairs), dtype=torch.float32, device=device)
        argmax = torch.empty(len(positions), dtype=torch.long, device=device)
        means = torch.full((len(positions),), float("nan"), device=device)
        variances = torch.full((len(positions),), float("nan"), device=device)
        for start in range(0, len(positions), step):
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

    def _hidden(self, inputs: torch.Tensor, positions: list[tuple[int, int]]) -> torch.Tensor:
        rows = torch.tensor([r for r, _ in positions], dtype=torch.long, device=inputs.device)
        columns = torch.tensor([c for _, c in positions], dtype=torch.long, device=inputs.device)
        if self._split is None:
            return self.model(inputs).logits[rows, columns]  # already logits: _logits passes them through
        body, _ = self._split
        return body(input_ids=inputs).last_hidden_state[rows, columns]

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
