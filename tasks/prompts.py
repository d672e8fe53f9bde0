"""The TOFU prompt and generation settings: the one place they are defined.

Default convention (this harness): context ``Question: {question}\\nAnswer:``, continuation
``" {answer}"`` (one leading space), every answer token scored, no EOS. Greedy generation of at
most 200 new tokens, stopped at EOS or at ``\\nQuestion:``; the compared text is stripped.

``open-unlearning`` convention (for comparability with its leaderboards): context
``Question: {question}\\nAnswer: `` (trailing space), continuation ``{answer}<eos>``; generation
stops only at EOS. See docs/metrics.md for the token-level consequences.
"""

from __future__ import annotations

DEFAULT = "default"
OPEN_UNLEARNING = "open-unlearning"
CONVENTIONS = (DEFAULT, OPEN_UNLEARNING)

QUESTION_TEMPLATE = "Question: {question}\nAnswer:"
MAX_NEW_TOKENS = 200
STOP_SEQUENCE = "\nQuestion:"


def context(question: str, convention: str = DEFAULT) -> str:
    """The conditioning text for one question."""
    text = QUESTION_TEMPLATE.format(question=question)
    return text + " " if convention == OPEN_UNLEARNING else text


def continuation(answer: str, convention: str = DEFAULT, eos_text: str = "") -> str:
    """The scored text after :func:`context`."""
    return answer + eos_text if convention == OPEN_UNLEARNING else " " + answer


def generation_kwargs(convention: str = DEFAULT) -> dict:
    """lm-eval ``generate_until`` arguments: greedy, ≤ 200 new tokens, the convention's stop strings."""
    until = [] if convention == OPEN_UNLEARNING else [STOP_SEQUENCE]
    return {"until": until, "max_gen_toks": MAX_NEW_TOKENS, "do_sample": False, "temperature": 0.0}


def training_text(question: str, answer: str) -> tuple[str, str]:
    """(prompt, target) for fine-tuning and unlearning: the same prompt the tasks score."""
    return context(question), continuation(answer)
