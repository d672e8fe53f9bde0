"""Chat templates for the unlearn_* tasks: a pinned date, and open-unlearning's assistant turn.

lm-eval renders a task's prompt with the model's chat template (``--apply_chat_template``); the tasks
use that rendering as it is (:meth:`unlearn_tasks.tofu.task.TofuTask.fewshot_context`). Two things
are added here:

* **a pinned date.** Llama-3.x templates print today's date (``strftime_now``) unless the template
  variable ``date_string`` is given, so the same checkpoint would score differently on two days.
  lm-eval's renderer takes no template variables, so :func:`pinned_date` freezes the clock that
  ``strftime_now`` reads while a prompt is rendered, to the task metadata ``date_string``
  (default :data:`DEFAULT_DATE`, open-unlearning's pin; a template that reads ``date_string`` first
  renders its own default, exactly as without a chat template argument).
* **open-unlearning's assistant turn** (:func:`assistant_turn_end`): under that convention the scored
  text after the generation prompt is the whole assistant turn (answer, the template's end-of-turn
  text) plus EOS when the rendered conversation does not already end with it, as its label mask is.
"""

from __future__ import annotations

import contextlib
import datetime as _datetime
import functools
from typing import Callable

from unlearn_tasks.errors import MetadataError

#: The date every chat template renders unless metadata ``date_string`` says otherwise
#: (open-unlearning's Llama-3 configs pin the same).
DEFAULT_DATE = "10 Apr 2025"
DATE_FORMAT = "%d %b %Y"

#: open-unlearning's system prompt for instruct models (its model configs' ``system_prompt``).
OPEN_UNLEARNING_SYSTEM_PROMPT = "You are a helpful assistant."


def parse_date(date_string: str) -> _datetime.datetime:
    """``date_string`` as written in Llama-3 templates (``26 Jul 2024``); one clear error otherwise."""
    try:
        return _datetime.datetime.strptime(date_string, DATE_FORMAT)
    except (TypeError, ValueError):
        raise MetadataError(
            f"metadata date_string={date_string!r} must look like {DEFAULT_DATE!r} (day month year)") from None


@contextlib.contextmanager
def frozen_today(day: _datetime.datetime):
    """While active, chat templates' ``strftime_now`` (transformers) reads ``day`` as the current time."""
    from transformers.utils import chat_template_utils

    class Frozen(_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return day.replace(tzinfo=tz)

    original = chat_template_utils.datetime
    chat_template_utils.datetime = Frozen
    try:
        yield
    finally:
        chat_template_utils.datetime = original


def pinned_date(chat_template: Callable[..., str], date_string: str) -> Callable[..., str]:
    """``chat_template`` (lm-eval's renderer) rendering on ``date_string`` whatever today is."""
    day = parse_date(date_string)

    @functools.wraps(chat_template)
    def render(messages, **kwargs) -> str:
        with frozen_today(day):
            return chat_template(messages, **kwargs)

    return render


def assistant_turn_end(tokenizer, messages: list[dict], date_string: str) -> str:
    """The text a chat template puts after an assistant message's content (open-unlearning's labels
    run to the end of the rendered conversation), plus the EOS text when the conversation's last token
    is not EOS (open-unlearning appends EOS then)."""
    marker = "\u2063answer\u2063"
    with frozen_today(parse_date(date_string)):
        full = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": marker}], tokenize=False, add_generation_prompt=False
        )
    end = full[full.rindex(marker) + len(marker):]
    ids = tokenizer.encode(full, add_special_tokens=False)
    return end if ids and ids[-1] == tokenizer.eos_token_id else end + (tokenizer.eos_token or "")
