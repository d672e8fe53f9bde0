"""lm-eval's request cache (``--cache_requests true|refresh``) is refused by the tasks that plan their requests.

The TOFU, MIA, fluency and MUSE tasks plan each document's requests in ``construct_requests`` (which
sequences to score, which texts to generate) and read the responses back by that plan. lm-eval's cache
restores the request instances without calling ``construct_requests``, so the plans are missing (a
``KeyError`` in ``process_results``); and its key holds the task name, few-shot count, chat-template flag,
system prompt and tokenizer but not the task's metadata, so cached prompts could be replayed under another
convention, attack or data folder. ``--cache_requests delete`` (which only deletes the cache) is fine.
"""

from __future__ import annotations

from unlearn_tasks.errors import UnlearnBenchError


class RequestCacheError(UnlearnBenchError, ValueError):
    """lm-eval's request cache was asked for on a task that plans its own requests."""


class NoRequestCache:
    """Mixin for an lm-eval task class: refuse lm-eval's request cache before any request is built."""

    def build_all_requests(self, *, cache_requests: bool = False, **kwargs) -> None:
        if cache_requests:
            raise RequestCacheError(
                f"{self.config.task} cannot use lm-eval's request cache (--cache_requests true|refresh): the cache "
                "skips the task's construct_requests, where it plans each document's requests, and its key leaves "
                "out the task metadata (convention, attack, data); run without --cache_requests"
            )
        return super().build_all_requests(cache_requests=cache_requests, **kwargs)
