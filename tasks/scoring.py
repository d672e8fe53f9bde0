"""Requests for sequences whose per-token scores a task needs, and the scores read back.

Two paths give the same numbers:

* **token details** (``unlearn-bench eval``; metadata ``token_details: true``): one ``loglikelihood``
  request per sequence; the model (``unlearn_hf``) answers with per-token log-probs and greedy matches.
* **fallback** (any lm-eval model, e.g. plain ``lm_eval --model hf``): the task tokenises exactly as
  lm-eval's HF model does (tokenizer from the ``pretrained``/``tokenizer`` model args) and asks one
  single-token request per answer token, whose ``is_greedy`` is that token's argmax match. Sequences
  that need only their mean log-prob get one request, divided by their token count. Slower, never wrong:
  a tokenizer whose answer tokens cannot be split exactly raises an error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lm_eval.api.instance import Instance


@dataclass(frozen=True)
class Sequence:
    """A continuation scored after a context. ``per_token``: per-token greedy matches are needed."""

    name: str
    context: str
    continuation: str
    per_token: bool = False


@dataclass(frozen=True)
class Scores:
    """A scored continuation: per-token log-probs, greedy matches (None when not requested),
    and the next-token distribution's log-prob mean/variance (token-details path only)."""

    logprobs: list[float]
    greedy: list[bool] | None = None
    means: list[float] | None = None
    variances: list[float] | None = None

    def skip(self, count: int) -> "Scores":
        """The scores without the first ``count`` tokens."""
        cut = lambda values: None if values is None else values[count:]  # noqa: E731
        return Scores(self.logprobs[count:], cut(self.greedy), cut(self.means), cut(self.variances))


class TokenDetailsMissing(RuntimeError):
    pass


@dataclass
class Plan:
    """Which request indices belong to which sequence (or generation) of one document; for per-token
    fallback requests, also the first token each request scores."""

    sequences: dict[str, tuple[Sequence, list[int], list[int]]]
    generations: dict[str, int]


class RequestBuilder:
    """Builds a document's Instances for one of the two paths and reads the responses back."""

    def __init__(self, token_details: bool, tokenizer_args: dict | None):
        self.token_details = token_details
        self.tokenizer_args = tokenizer_args or {}

    def build(self, doc: dict, sequences: list[Sequence], generations: dict[str, tuple[str, dict]], **kwargs):
        instances, plan = [], Plan({}, {})
        for sequence in sequences:
            requests = self._requests(sequence)
            start = len(instances)
            instances += [self._instance("loglikelihood", doc, pair, start + i, kwargs) for i, (pair, _) in enumerate(requests)]
            plan.sequences[sequence.name] = (sequence, list(range(start, len(instances))), [s for _, s in requests])
        for name, (context, generation_kwargs) in generations.items():
            plan.generations[name] = len(instances)
            instances.append(self._instance("generate_until", doc, (context, dict(generation_kwargs)), len(instances), kwargs))
        return instances, plan

    @staticmethod
    def _instance(kind, doc, arguments, idx, kwargs):
        return Instance(request_type=kind, doc=doc, arguments=arguments, idx=idx, **kwargs)

    def _requests(self, sequence: Sequence) -> list[tuple[tuple[str, str], int]]:
        if self.token_details or not sequence.per_token:
            return [((sequence.context, sequence.continuation), 0)]
        return self.tokenizer.token_requests(sequence.context, sequence.continuation)

    def read(self, plan: Plan, results: list) -> tuple[dict[str, Scores], dict[str, str]]:
        scores = {name: self._scores(sequence, [results[i] for i in indices], starts)
                  for name, (sequence, indices, starts) in plan.sequences.items()}
        texts = {name: results[index] for name, index in plan.generations.items()}
        return scores, texts

    def _scores(self, sequence: Sequence, responses: list, starts: list[int]) -> Scores:
        if self.token_details:
            (response,) = responses
            if not hasattr(response, "logprobs"):
                raise TokenDetailsMissing(
                    "metadata token_details is set but the model returned plain (loglikelihood, is_greedy) "
                    "responses; run through `unlearn-bench eval` (model unlearn_hf) or drop token_details"
                )
            return Scores(response.logprobs, response.greedy, response.means, response.variances)
        if sequence.per_token:
            return _per_token_scores(responses, starts)
        ((loglikelihood, _),) = responses
        count = self.tokenizer.continuation_length(sequence.context, sequence.continuation)
        # Only the mean is known on this path: spread it evenly so means and sums stay exact.
        return Scores([float(loglikelihood) / count] * count)

    @functools.cached_property
    def tokenizer(self) -> "LmEvalTokenization":
        return LmEvalTokenization.load(**self.tokenizer_args)


class LmEvalTokenization:
    """Tokenisation exactly as lm-eval's HF model does it (``HFLM.tok_encode`` and ``_encode_pair``)."""

    def __init__(self, tokenizer, add_bos_token: bool | None = None):
        self.tokenizer = tokenizer
        self.add_bos_token = add_bos_token

    @classmethod
    def load(cls, pretrained=None, tokenizer=None, revision="main", trust_remote_code=False, add_bos_token=None, **_):
        from transformers import AutoTokenizer

        name = tokenizer if isinstance(tokenizer, str) else pretrained
        if not isinstance(name, str):
            raise ValueError("the fallback scoring path needs the tokenizer: pass pretrained=<path or hub id> in --model_args")
        loaded = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
        return cls(loaded, add_bos_token)

    def encode(self, text: str) -> list[int]:
        from lm_eval.models.utils import _add_special_kwargs, has_bos_prefix

        special = _add_special_kwargs(None, self.add_bos_token)
        if self.tokenizer.bos_token and has_bos_prefix(text, self.tokenizer.bos_token):
            special["add_special_tokens"] = False
        return self.tokenizer.encode(text, **special)

    def split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's (context tokens, continuation tokens): trailing spaces move to the continuation."""
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        whole = self.encode(context + continuation)
        return whole[: len(self.encode(context))], whole[len(self.encode(context)):]

    def continuation_length(self, context: str, continuation: str) -> int:
        return len(self.split(context, continuation)[1])

    def token_requests(self, context: str, continuation: str) -> list[tuple[tuple[str, str], int]]:
        """One request per continuation token t: ((context, continuation), s) scoring tokens s..t.

        s = t when the text can be cut exactly before token t. lm-eval moves a context's trailing
        whitespace into the continuation, and a byte-level token may end inside a character, so
        tokens after such boundaries are scored together with the preceding ones.
        """
        context_tokens, tokens = self.split(context, continuation)
        text = context + continuation
        ends = _token_ends(self.tokenizer, text, len(context_tokens) + len(tokens))
        offset = len(context_tokens)
        requests = []
        for position in range(len(tokens)):
            for start in range(position, -1, -1):
                pair = (text[: ends[offset + start - 1]], text[ends[offset + start - 1]: ends[offset + position]])
                if pair[1] and self.split(*pair) == (context_tokens + tokens[:start], tokens[start:position + 1]):
                    requests.append((pair, start))
                    break
            else:
                raise ValueError(
                    f"cannot split {continuation!r} into token requests that re-tokenise exactly with this "
                    "tokenizer; score through `unlearn-bench eval` (per-token details) instead"
                )
        return requests


def _per_token_scores(responses: list, starts: list[int]) -> Scores:
    """Per-token log-probs and greedy matches from requests that each end at one token.

    A request scoring tokens s..t tells t's greedy match only when s..t−1 all matched; otherwise
    the match is unknown (None) and :func:`greedy_matches` refuses to use it.
    """
    logprobs, greedy = [], []
    for position, ((loglikelihood, is_greedy), start) in enumerate(zip(responses, starts)):
        logprobs.append(float(loglikelihood) - sum(logprobs[start:position]))
        greedy.append(bool(is_greedy) if all(greedy[start:position]) else None)
    return Scores(logprobs, greedy)


def greedy_matches(scores: Scores) -> list[bool]:
    """The per-token greedy matches, which extraction strength and exact memorisation need."""
    if scores.greedy is None or None in scores.greedy:
        raise ValueError(
            "per-token greedy matches are unknown on the fallback scoring path here (a token after a "
            "mispredicted whitespace-only token); score through `unlearn-bench eval` (per-token details)"
        )
    return scores.greedy


def _token_ends(tokenizer, text: str, count: int) -> list[int]:
    """Character end offset of each token of ``text`` (fast tokenizers only)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("the fallback scoring path needs a fast tokenizer (character offsets)")
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    offsets = encoding["offset_mapping"]
    special = count - len(offsets)  # tokens added by encode() (e.g. BOS) have no offsets here
    return [0] * special + [end for _, end in offsets]
