"""``unlearn_hf``: lm-eval's HF model that also returns per-token details, one forward pass per sequence.

Every ``loglikelihood`` response is a :class:`TokenScores`: it unpacks as lm-eval's
``(loglikelihood, is_greedy)`` so standard tasks work unchanged, and carries per-token log-probs,
greedy matches, and the mean/variance of log p under the model's next-token distribution (for
Min-K%++; only for requests that want it, :func:`wants_moments`). Identical token sequences are scored
once per call and identical generation requests are generated once, so tasks that share sequences
share the work. Scoring runs each distinct context once per batch and the inputs after it on its KV
cache, and applies the output head only at scored positions, over the full output vocabulary, in
float32 (:mod:`harness_ext.models.head_scoring`); plain greedy generation drops finished rows and
refills their places (:mod:`harness_ext.models.greedy_generation`).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter

import lm_eval.models  # noqa: F401  (fill lm-eval's registry with the built-ins first)
import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

from harness_ext.lm_eval_internals import set_process_shard, whole_generation_groups
from harness_ext.models.allocator import keep_freed_memory
from harness_ext.models.batch_size import scoring_batch_size
from harness_ext.models.greedy_generation import StopCheck, generate_greedy, plain_greedy
from harness_ext.models.head_scoring import ContextBatch, HeadScorer, PositionScores
from unlearn_tasks.errors import UnlearnBenchError


class ModelInputError(UnlearnBenchError, ValueError):
    """The model cannot score what a task asks for (not a causal LM; a continuation beyond its context)."""


class TokenScores(tuple):
    """``(loglikelihood, is_greedy)`` plus per-token details of the continuation."""

    def __new__(cls, logprobs: list[float], greedy: list[bool], means: list[float] | None,
                variances: list[float] | None):
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

    returns_token_details = True  # evaluate() turns on the tasks' token_details path

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stats = Counter()
        if self.device.type == "cpu":
            keep_freed_memory()  # CPU tensors reuse freed heap blocks instead of fresh, page-faulting mmaps
        accelerator = getattr(self, "accelerator", None)  # HFLM shards only across GPUs; CPU processes (gloo) too
        if accelerator is not None and accelerator.num_processes > 1 and self.world_size == 1:
            set_process_shard(self, accelerator.process_index, accelerator.num_processes)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        self._moments_wanted = {request.args for request in requests if wants_moments(request)}
        try:
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        finally:
            self._moments_wanted = None

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs=None):
        if self.backend != "causal":
            raise ModelInputError("unlearn_hf scores causal language models only")
        moments_wanted = getattr(self, "_moments_wanted", None)
        windows = [self._window(context, continuation) for _, context, continuation in requests]
        needed: dict[tuple, tuple[int, bool]] = {}
        for (cache_key, _, _), (tokens, length) in zip(requests, windows):
            moments = moments_wanted is None or cache_key in moments_wanted
            known_length, known_moments = needed.get(tokens, (0, False))
            needed[tokens] = (max(length, known_length), moments or known_moments)
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
            raise ModelInputError(f"a continuation of {len(continuation)} tokens cannot be scored (at least 1, at most"
                                  f" max_length = {self.max_length}; raise max_length in --model_args)")
        return tuple((context + continuation)[-(self.max_length + 1):]), len(continuation)

    def _score_unique(self, needed: dict[tuple, tuple[int, bool]], disable_tqdm: bool) -> dict[tuple, "_SequenceScores"]:
        """Forward each unique model input once, each distinct context once per batch. Sequences that
        differ only in their last token (e.g. the answer letters of a multiple-choice question) share an
        input, as in HFLM's logits cache; inputs that share a context (the text before their first scored
        token) are batched together and share its forward pass."""
        inputs = _scored_inputs(needed)
        batch_size = scoring_batch_size(self, sorted(inputs, key=len, reverse=True))
        order = _context_order(inputs)
        scored = {}
        with tqdm(total=len(order), disable=disable_tqdm or self.rank != 0, desc="Scoring unique sequences") as bar:
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                scored.update(self._score_batch({key: inputs[key] for key in batch}))
                bar.update(len(batch))
        self.stats["sequences_scored"] += len(order)
        self.stats["forward_batches"] += -(-len(order) // batch_size)
        return scored

    def _score_batch(self, inputs: dict[tuple, "_ScoredInput"]) -> dict[tuple, "_SequenceScores"]:
        """The head only at the positions the batch's members score: each input's last ``longest
        continuation`` positions, shared by the members of that input (and the first by its context's)."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = ContextBatch.of([(entry.context, entry.suffix) for entry in inputs.values()], pad, self.device)
        moments = [False] * batch.size
        pairs, spans = [], []
        for row, entry in enumerate(inputs.values()):
            positions = [batch.position(row, step) for step in range(entry.longest)]
            for position in positions:
                moments[position] = moments[position] or entry.moments
            for tokens, length in entry.members:
                spans.append((tokens, positions[entry.longest - length:], len(pairs)))
                pairs += [(position, token) for position, token in zip(positions[entry.longest - length:], tokens[-length:])]
        with torch.autocast(self.device.type, dtype=self.mixed_precision_dtype,
                            enabled=self.mixed_precision_dtype is not None):
            chosen, details = self.scorer.score(batch, pairs, moments)
        return {tokens: _SequenceScores.at(chosen[start:start + len(positions)], details, positions, tokens[-len(positions):])
                for tokens, positions, start in spans}

    @property
    def scorer(self) -> HeadScorer:
        """Head only at scored positions, over the model's full output vocabulary, float32 statistics;
        rebuilt when the model or its head is replaced (mixing, probes)."""
        if getattr(self, "_scorer", None) is None or not self._scorer.serves(self.model):
            self._scorer = HeadScorer(self.model, greedy_dtype=self.softmax_dtype)
        return self._scorer

    def generate_until(self, requests, disable_tqdm: bool = False):
        """Each unique (prompt, settings) generated once; with a numeric batch size, lm-eval hands each
        settings group to :meth:`_model_generate` whole (longest prompt first) and the batch size bounds
        the rows decoding at once, finished rows replaced by the next prompts."""
        return generate_each_once(self, requests, lambda unique: self._generate_unique(unique, disable_tqdm))

    def _generate_unique(self, unique: list, disable_tqdm: bool) -> list[str]:
        rows = self.batch_size
        self._decode = {"rows": None if rows == "auto" else int(rows), "progress": not disable_tqdm and self.rank == 0}
        with contextlib.nullcontext() if rows == "auto" else whole_generation_groups(self):
            return super().generate_until(unique, disable_tqdm=disable_tqdm)

    def _model_generate(self, context, max_length, stop, **generation_kwargs):
        """Plain greedy decoding drops each row once it is done (EOS or stop string) and refills its place;
        anything else is HFLM's, ``rows`` prompts at a time."""
        decode = getattr(self, "_decode", None) or {"rows": None, "progress": False}
        settings = dict(generation_kwargs)
        if settings.get("temperature", 0.0) == 0.0 and settings.get("do_sample") is None:
            settings["do_sample"] = False
        if not settings.get("do_sample"):
            settings.pop("temperature", None)
        config = self.model.generation_config
        new_tokens = max_length - context.shape[1]
        if self.backend != "causal" or "attention_mask" not in settings or new_tokens < 1 or not plain_greedy(config, settings):
            return self._hf_generate_in_chunks(context, max_length, stop, decode["rows"], generation_kwargs)
        eos = config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos_ids, default=0)
        bar = tqdm(total=len(context), desc="Greedy decoding", disable=not decode["progress"])
        with bar, torch.autocast(self.device.type, dtype=self.mixed_precision_dtype,
                                 enabled=self.mixed_precision_dtype is not None):
            output, row_steps = generate_greedy(self.model, context, settings["attention_mask"], new_tokens,
                                                StopCheck(self.tokenizer, list(stop), eos_ids), pad,
                                                rows=decode["rows"], on_done=bar.update)
        self.stats["decode_row_steps"] += row_steps
        return output

    def _hf_generate_in_chunks(self, context, max_length, stop, rows: int | None, generation_kwargs: dict):
        """HFLM's ``model.generate`` over ``rows`` prompts at a time, outputs right-padded to one width."""
        rows = rows or len(context)
        mask = generation_kwargs.pop("attention_mask", None)
        outputs = [super(UnlearnHFLM, self)._model_generate(
            context[start:start + rows], max_length, stop, **generation_kwargs,
            **({} if mask is None else {"attention_mask": mask[start:start + rows]}))
            for start in range(0, len(context), rows)]
        width = max(output.shape[1] for output in outputs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return torch.cat([torch.nn.functional.pad(output, (0, width - output.shape[1]), value=pad) for output in outputs])


class _ScoredInput:
    """One unique model input: the sequences scored on it (``members``: token ids, scored length), the
    positions they score (its last ``longest``) and whether any wants the next-token moments."""

    def __init__(self, inputs: tuple):
        self.inputs, self.members, self.longest, self.moments = inputs, [], 0, False

    def add(self, tokens: tuple, length: int, moments: bool) -> None:
        self.members.append((tokens, length))
        self.longest, self.moments = max(self.longest, length), self.moments or moments

    @property
    def context(self) -> tuple:
        """The input up to and including the position that predicts its first scored token."""
        return self.inputs[: len(self.inputs) - self.longest + 1]

    @property
    def suffix(self) -> tuple:
        return self.inputs[len(self.context):]


def _scored_inputs(needed: dict[tuple, tuple[int, bool]]) -> dict[tuple, _ScoredInput]:
    """The unique model inputs (each sequence without its last token) and what is scored on them."""
    inputs: dict[tuple, _ScoredInput] = {}
    for tokens, (length, moments) in needed.items():
        inputs.setdefault(tokens[:-1], _ScoredInput(tokens[:-1])).add(tokens, length, moments)
    return inputs


def _context_order(inputs: dict[tuple, _ScoredInput]) -> list[tuple]:
    """Inputs grouped by context (a context's inputs adjacent, longest first), the groups longest first:
    consecutive batches then hold few contexts and little padding."""
    groups: dict[tuple, list[tuple]] = {}
    for key, entry in inputs.items():
        groups.setdefault(entry.context, []).append(key)
    ordered = sorted(groups.values(), key=lambda keys: (-max(map(len, keys)), keys[0]))
    return [key for keys in ordered for key in sorted(keys, key=lambda key: (-len(key), key))]


class _SequenceScores:
    """Per-position details of the scored tail of one sequence (means/variances None when not requested)."""

    def __init__(self, logprobs, greedy, means, variances):
        self.logprobs, self.greedy, self.means, self.variances = logprobs, greedy, means, variances

    @classmethod
    def at(cls, logprobs: list[float], details: PositionScores, positions: list[int], targets: tuple) -> "_SequenceScores":
        greedy = [details.argmax[position] == target for position, target in zip(positions, targets)]
        means, variances = [details.means[p] for p in positions], [details.variances[p] for p in positions]
        if any(value is None for value in means):
            means = variances = None
        return cls(logprobs, greedy, means, variances)

    def last(self, length: int) -> TokenScores:
        tail = slice(len(self.logprobs) - length, None)
        cut = lambda values: None if values is None else values[tail]  # noqa: E731
        return TokenScores(self.logprobs[tail], self.greedy[tail], cut(self.means), cut(self.variances))


def generate_each_once(lm, requests: list, generate) -> list[str]:
    """``generate(unique requests)`` once per distinct (prompt, generation settings), answers fanned back
    out in request order; counted in ``lm.stats``."""
    keys = [(request.args[0], json.dumps(request.args[1], sort_keys=True, default=str)) for request in requests]
    first: dict[tuple, int] = {}
    for position, key in enumerate(keys):
        first.setdefault(key, position)
    outputs = dict(zip(first, generate([requests[position] for position in first.values()])))
    lm.stats["generation_requests"] += len(requests)
    lm.stats["generations"] += len(first)
    return [outputs[key] for key in keys]


def wants_moments(request) -> bool:
    """Whether a loglikelihood request needs the next-token log p mean/variance (Min-K%++).

    A task says so with the Instance attribute ``next_token_moments``; requests that do not say
    (plain lm-eval tasks, older tasks) get them, as before.
    """
    return bool(getattr(request, "next_token_moments", True))
