"""Requests for sequences whose per-token scores a task needs, and the scores read back.

Two paths give the same numbers:

* **token details** (``unlearn-bench eval``; metadata ``token_details: true``): one ``loglikelihood``
  request per sequence; the model (``unlearn_hf``) answers with per-token log-probs and greedy matches.
* **plain** (any lm-eval model, e.g. plain ``lm_eval --model hf``): the task tokenises exactly as
  lm-eval's HF model does (tokenizer from the ``pretrained``/``tokenizer`` model args) and asks the
  requests of :mod:`unlearn_tasks.tokenization`: one loglikelihood request per answer token (its
  ``is_greedy`` is that token's argmax match) plus one-token greedy probes where lm-eval's
  whitespace handling merges tokens. Sequences that need only their mean log-prob get one request,
  divided by their token count. A greedy match that stays unknown is ``None``: the metrics that need
  it become NaN (:func:`extraction_strength`, :func:`exact_memorization`), never a guess.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from lm_eval.api.instance import Instance

from unlearn_metrics import memorization
from unlearn_tasks.errors import MetadataError
from unlearn_tasks.tokenization import PROBE_KWARGS, LmEvalTokenization, TokenRequests


@dataclass(frozen=True)
class ScoredSequence:
    """A continuation scored after a context. ``per_token``: per-token greedy matches are needed;
    ``moments``: the next-token log-p mean/variance at each token are needed (Min-K%++)."""

    name: str
    context: str
    continuation: str
    per_token: bool = False
    moments: bool = False


@dataclass(frozen=True)
class Scores:
    """A scored continuation: per-token log-probs, greedy matches (None when not requested; an entry
    is None when unknown on the plain path), and the next-token distribution's log-prob mean/variance
    (token-details path only)."""

    logprobs: list[float]
    greedy: list[bool | None] | None = None
    means: list[float] | None = None
    variances: list[float] | None = None
    exact_tokens: bool = True  # False: some log-probs are equal shares of a group's sum (plain path)

    def skip(self, count: int) -> "Scores":
        """The scores without the first ``count`` tokens."""
        return self.slice(count, None)

    def slice(self, start: int, stop: int | None) -> "Scores":
        cut = lambda values: None if values is None else values[start:stop]  # noqa: E731
        return Scores(self.logprobs[start:stop], cut(self.greedy), cut(self.means), cut(self.variances), self.exact_tokens)


class TokenDetailsMissing(MetadataError):
    """Metadata token_details is set, but the model returns plain (loglikelihood, is_greedy) responses."""


@dataclass(frozen=True)
class PlannedSequence:
    """Where a sequence's responses are: its loglikelihood request indices, the tokens each scores
    (plain path: :class:`TokenRequests`) and its probes ({token: (request index, expected text)})."""

    sequence: ScoredSequence
    indices: list[int]
    requests: TokenRequests
    probes: dict[int, tuple[int, str]]


@dataclass
class Plan:
    """Which request indices belong to which sequence (or generation) of one document."""

    sequences: dict[str, PlannedSequence]
    generations: dict[str, int]


class RequestBuilder:
    """Builds a document's Instances for one of the two paths and reads the responses back."""

    def __init__(self, token_details: bool, tokenizer_args: dict | None):
        self.token_details = token_details
        self.tokenizer_args = tokenizer_args or {}

    def build(self, doc: dict, sequences: list[ScoredSequence], generations: dict[str, tuple[str, dict]], **kwargs):
        instances, plan = [], Plan({}, {})

        def add(kind: str, arguments: tuple) -> int:
            instances.append(Instance(request_type=kind, doc=doc, arguments=arguments, idx=len(instances), **kwargs))
            return len(instances) - 1

        for sequence in sequences:
            requests = self._requests(sequence)
            indices = [add("loglikelihood", pair) for pair in requests.pairs]
            for index in indices:  # read by unlearn_hf (wants_moments); other models ignore it
                instances[index].next_token_moments = sequence.moments
            probes = {t: (add("generate_until", (context, dict(PROBE_KWARGS))), expected)
                      for t, (context, expected) in requests.probes.items()}
            plan.sequences[sequence.name] = PlannedSequence(sequence, indices, requests, probes)
        for name, (context, generation_kwargs) in generations.items():
            plan.generations[name] = add("generate_until", (context, dict(generation_kwargs)))
        return instances, plan

    def _requests(self, sequence: ScoredSequence) -> TokenRequests:
        if self.token_details or not sequence.per_token:
            return TokenRequests([(sequence.context, sequence.continuation)], [0], [0])
        return self.tokenizer.token_requests(sequence.context, sequence.continuation)

    def read(self, plan: Plan, results: list) -> tuple[dict[str, Scores], dict[str, str]]:
        scores = {name: self._scores(planned, results) for name, planned in plan.sequences.items()}
        texts = {name: results[index] for name, index in plan.generations.items()}
        return scores, texts

    def _scores(self, planned: PlannedSequence, results: list) -> Scores:
        responses = [results[i] for i in planned.indices]
        if self.token_details:
            (response,) = responses
            if not hasattr(response, "logprobs"):
                raise TokenDetailsMissing(
                    "metadata token_details is set but the model returned plain (loglikelihood, is_greedy) "
                    "responses; run through `unlearn-bench eval` (model unlearn_hf) or drop token_details"
                )
            return Scores(response.logprobs, response.greedy, response.means, response.variances)
        if planned.sequence.per_token:
            probed = {t: results[index] == expected for t, (index, expected) in planned.probes.items()}
            return _per_token_scores(responses, planned.requests, probed)
        ((loglikelihood, _),) = responses
        count = self.tokenizer.continuation_length(planned.sequence.context, planned.sequence.continuation)
        # Only the mean is known on this path: spread it evenly so means and sums stay exact.
        return Scores([float(loglikelihood) / count] * count)

    @functools.cached_property
    def tokenizer(self) -> LmEvalTokenization:
        return LmEvalTokenization.load(**self.tokenizer_args)


def _per_token_scores(responses: list, requests: TokenRequests, probed: dict[int, bool]) -> Scores:
    """Per-token log-probs and greedy matches from requests that each end at a new token (or group).

    A request scoring tokens s..t tells the match of its new token t when s..t−1 all matched; otherwise
    a probe of t tells it, and without one the match is unknown (None). A group (tokens inside one
    character) shares its log-prob sum equally, and its matches are known only when all matched.
    """
    logprobs, greedy = [], []
    for (loglikelihood, is_greedy), start, end in zip(responses, requests.starts, requests.ends):
        scored = len(logprobs)
        count = end + 1 - scored
        logprobs += [(float(loglikelihood) - sum(logprobs[start:scored])) / count] * count
        if not all(greedy[start:scored]):
            greedy += [None] * (count - 1) + [probed.get(end)]
        elif is_greedy or count == 1:
            greedy += [bool(is_greedy)] * count
        else:
            greedy += [None] * count
    return Scores(logprobs, greedy, exact_tokens=len(logprobs) == len(requests.ends))


def extraction_strength(greedy: list[bool | None], floor_one_token: bool = False) -> float:
    """:func:`unlearn_metrics.memorization.extraction_strength`, or NaN when unknown matches change it.

    ES only grows when a match turns true, so it is known exactly when reading every unknown match
    as false and as true gives the same value.
    """
    low, high = (memorization.extraction_strength([m if m is not None else fill for m in greedy], floor_one_token)
                 for fill in (False, True))
    return low if low == high else math.nan


def exact_memorization(greedy: list[bool | None]) -> float:
    """:func:`unlearn_metrics.memorization.exact_memorization`, or NaN when a match is unknown."""
    return math.nan if None in greedy else memorization.exact_memorization(greedy)
