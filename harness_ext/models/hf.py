"""``unlearn_hf``: lm-eval's HF model that also returns per-token details, one forward pass per sequence.

Every ``loglikelihood`` response is a :class:`TokenScores`: it unpacks as lm-eval's
``(loglikelihood, is_greedy)`` so standard tasks work unchanged, and carries per-token log-probs,
greedy matches, and the mean/variance of log p under the model's next-token distribution (for
Min-K%++). Identical token sequences are scored once per call and identical generation
requests are generated once, so tasks that share sequences share the work.
"""

from __future__ import annotations

import json
from collections import Counter

import lm_eval.models  # noqa: F401  (fill lm-eval's registry with the built-ins first)
import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm


class TokenScores(tuple):
    """``(loglikelihood, is_greedy)`` plus per-token details of the continuation."""

    def __new__(cls, logprobs: list[float], greedy: list[bool], means: list[float], variances: list[float]):
        scores = super().__new__(cls, (float(sum(logprobs)), bool(all(greedy))))
        scores.logprobs, scores.greedy = logprobs, greedy
        scores.means, scores.variances = means, variances
        return scores

    def __getnewargs__(self):
        return self.logprobs, self.greedy, self.means, self.variances


def has_token_details(response) -> bool:
    """Whether an lm-eval loglikelihood response carries per-token details."""
    return isinstance(response, TokenScores)


@register_model("unlearn_hf")
class UnlearnHFLM(HFLM):
    """HFLM with per-token details, deduplicated scoring and generation, and work counters.

    ``stats`` counts requests received, the unique model inputs actually forwarded
    (``sequences_scored``) and the prompts actually generated, so tests and benchmarks can check
    that no work is repeated.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stats = Counter()

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        if self.backend != "causal":
            raise NotImplementedError("unlearn_hf scores causal language models only")
        windows = [self._window(context, continuation) for _, context, continuation in requests]
        needed: dict[tuple, int] = {}
        for tokens, length in windows:
            needed[tokens] = max(length, needed.get(tokens, 0))
        scored = self._score_unique(needed, disable_tqdm)
        self.stats["loglikelihood_requests"] += len(requests)
        results = []
        for (cache_key, _, _), (tokens, length) in zip(requests, windows):
            answer = scored[tokens].last(length)
            if cache_key is not None:
                self.cache_hook.add_partial("loglikelihood", cache_key, answer)
            results.append(answer)
        return results

    def _window(self, context: list[int], continuation: list[int]) -> tuple[tuple, int]:
        """The model input (left-truncated to max_length + 1 tokens, as HFLM does) and its scored length."""
        if not continuation or len(continuation) > self.max_length:
            raise ValueError(f"continuation of {len(continuation)} tokens cannot be scored (max {self.max_length})")
        return tuple((context + continuation)[-(self.max_length + 1):]), len(continuation)

    def _score_unique(self, needed: dict[tuple, int], disable_tqdm: bool) -> dict[tuple, "_SequenceScores"]:
        """Forward each unique model input once. Sequences that differ only in their last token (e.g.
        the answer letters of a multiple-choice question) share an input, as in HFLM's logits cache."""
        groups: dict[tuple, list[tuple[tuple, int]]] = {}
        for tokens, length in needed.items():
            groups.setdefault(tokens[:-1], []).append((tokens, length))
        order = sorted(groups, key=len, reverse=True)
        batch_size = int(self.batch_size) if str(self.batch_size) != "auto" else 8
        scored = {}
        with tqdm(total=len(order), disable=disable_tqdm or self.rank != 0, desc="Scoring unique sequences") as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                scored.update(self._score_batch(batch, [groups[inputs] for inputs in batch]))
                bar.update(len(batch))
        self.stats["sequences_scored"] += len(order)
        self.stats["forward_batches"] += -(-len(order) // batch_size)
        return scored

    @torch.no_grad()
    def _score_batch(self, batch: list[tuple], members: list[list[tuple[tuple, int]]]) -> dict[tuple, "_SequenceScores"]:
        width = max(len(inputs) for inputs in batch)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        padded = torch.full((len(batch), width), pad, dtype=torch.long, device=self.device)
        for row, inputs in enumerate(batch):
            padded[row, : len(inputs)] = torch.tensor(inputs, dtype=torch.long)
        logprobs = F.log_softmax(self._model_call(padded), dim=-1, dtype=self.softmax_dtype)
        out = {}
        for row, (inputs, group) in enumerate(zip(batch, members)):
            end = len(inputs)
            for tokens, length in group:
                window = logprobs[row, end - length:end, : self.vocab_size]
                targets = torch.tensor(tokens[-length:], dtype=torch.long, device=window.device)
                out[tokens] = _SequenceScores.from_logprobs(window, targets)
        return out

    def generate_until(self, requests, disable_tqdm: bool = False):
        keys = [(request.args[0], json.dumps(request.args[1], sort_keys=True, default=str)) for request in requests]
        first = {}
        for position, key in enumerate(keys):
            first.setdefault(key, position)
        unique = [requests[position] for position in first.values()]
        outputs = dict(zip(first, super().generate_until(unique, disable_tqdm=disable_tqdm)))
        self.stats["generation_requests"] += len(requests)
        self.stats["generations"] += len(unique)
        return [outputs[key] for key in keys]


class _SequenceScores:
    """Per-position details of the scored tail of one sequence."""

    def __init__(self, logprobs, greedy, means, variances):
        self.logprobs, self.greedy, self.means, self.variances = logprobs, greedy, means, variances

    @classmethod
    def from_logprobs(cls, window: torch.Tensor, targets: torch.Tensor) -> "_SequenceScores":
        probs = window.exp()
        means = (probs * window).sum(-1)
        variances = (probs * window.square()).sum(-1) - means.square()
        chosen = window.gather(1, targets.unsqueeze(1)).squeeze(1)
        greedy = window.argmax(-1) == targets
        return cls(chosen.tolist(), greedy.tolist(), means.tolist(), variances.clamp_min(0).tolist())

    def last(self, length: int) -> TokenScores:
        tail = slice(len(self.logprobs) - length, None)
        return TokenScores(self.logprobs[tail], self.greedy[tail], self.means[tail], self.variances[tail])
