"""lm-eval's own tokenisation, and the plain-path requests that recover per-token scores from it.

On the plain path (any lm-eval model, e.g. ``lm_eval --model hf``) a task only gets
``(loglikelihood, is_greedy)`` per request. :meth:`LmEvalTokenization.token_requests` turns one
continuation into requests whose answers give every token's log-prob and greedy match:

* one ``loglikelihood`` request per continuation token t, scoring tokens s..t, where s = t when the
  text can be cut exactly before token t. lm-eval moves a context's trailing whitespace into the
  continuation, and a byte-level token may end inside a character, so after such a boundary the
  request also scores the preceding tokens (s < t): its ``is_greedy`` tells t's match only when
  s..t−1 all matched. A token that ends inside a character gets no request of its own: the next
  request scores it together with the tokens after it up to the character's end (a *group*);
* for each such merged token t, a greedy one-token ``generate_until`` *probe* with the text before t
  as context (generation does not move whitespace): t matched iff the generated text is t's text.
  A probe is made only when it is exact: the context encodes to exactly the tokens before t, and t's
  decoded text is non-empty, whole (no U+FFFD) and no other vocabulary entry decodes to it.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass, field

from unlearn_tasks.errors import MetadataError

#: Generation arguments of a probe: one greedy token (lm-eval adds the EOS text as the only stop).
PROBE_KWARGS = {"until": [], "max_gen_toks": 1, "do_sample": False, "temperature": 0.0}


@dataclass(frozen=True)
class TokenRequests:
    """The plain-path requests of one continuation.

    ``pairs[i]`` is a (context, continuation) loglikelihood request scoring tokens
    ``starts[i]``..``ends[i]``; ``probes[t]`` is (generation context, token t's text) for merged
    tokens that can be probed.
    """

    pairs: list[tuple[str, str]]
    starts: list[int]
    ends: list[int]
    probes: dict[int, tuple[str, str]] = field(default_factory=dict)


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
            raise MetadataError(
                "the plain scoring path needs the tokenizer: pass pretrained=<path or hub id> in --model_args")
        loaded = AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=trust_remote_code)
        return cls(loaded, add_bos_token)

    def encode(self, text: str) -> list[int]:
        """``HFLM.tok_encode`` (loglikelihood) and, for one string, ``HFLM.tok_batch_encode`` (generation)."""
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

    def token_requests(self, context: str, continuation: str) -> TokenRequests:
        """The loglikelihood requests (one per continuation token) and the probes of merged tokens."""
        context_tokens, tokens = self.split(context, continuation)
        text = context + continuation
        ends = _token_ends(self.tokenizer, text, len(context_tokens) + len(tokens))
        cut = lambda position: ends[len(context_tokens) + position - 1]  # noqa: E731  (text end before token)
        requests = TokenRequests([], [], [])
        for position in range(len(tokens)):
            for start in range(position, -1, -1):
                pair = (text[: cut(start)], text[cut(start): cut(position + 1)])
                if pair[1] and self.split(*pair) == (context_tokens + tokens[:start], tokens[start:position + 1]):
                    requests.pairs.append(pair)
                    requests.starts.append(start)
                    requests.ends.append(position)
                    break
            else:
                continue  # the token ends inside a character: the next request scores it
            if start < position:
                probe = self._probe(text[: cut(position)], context_tokens + tokens[:position], tokens[position])
                if probe is not None:
                    requests.probes[position] = probe
        return requests

    def _probe(self, prefix: str, prefix_tokens: list[int], token: int) -> tuple[str, str] | None:
        expected = self.tokenizer.decode([token], skip_special_tokens=True)
        exact = expected and "\ufffd" not in expected and self._decodings[expected] == 1
        return (prefix, expected) if exact and self.encode(prefix) == prefix_tokens else None

    @functools.cached_property
    def _decodings(self) -> collections.Counter:
        """How many vocabulary entries decode (alone, as lm-eval decodes a generation) to each text."""
        ids = [[i] for i in range(len(self.tokenizer))]
        return collections.Counter(self.tokenizer.batch_decode(ids, skip_special_tokens=True))


def _token_ends(tokenizer, text: str, count: int) -> list[int]:
    """Character end offset of each token of ``text`` (fast tokenizers only)."""
    if not getattr(tokenizer, "is_fast", False):
        raise MetadataError("the plain scoring path needs a fast tokenizer (character offsets)")
    encoding = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    offsets = encoding["offset_mapping"]
    special = count - len(offsets)  # tokens added by encode() (e.g. BOS) have no offsets here
    return [0] * special + [end for _, end in offsets]
