"""How one run turns a TOFU question and answer into scored text: the context lm-eval renders
(plain, or with the model's chat template), the continuation, and the tokens each metric counts.

The conventions (docs/metrics.md, "Prompt and generation"):

* **default**: continuation ``" {answer}"`` after ``Question: {question}\\nAnswer:``; with a chat
  template (as lm-eval's multiple-choice tasks drop their target delimiter there) the bare answer
  after the template's generation prompt. Every answer token is scored, nothing else.
* **open-unlearning**: continuation ``{answer}{eos}`` after ``Question: {question}\\nAnswer: ``; with
  a chat template, the whole assistant turn (:func:`unlearn_tasks.chat.assistant_turn_end`), with the
  system prompt "You are a helpful assistant." unless ``--system_instruction`` is given.

lm-eval moves a context's trailing whitespace into the continuation (``Answer: ``, a generation prompt
ending in a newline); those tokens belong to the prompt and are never scored (``skip_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from unlearn_tasks import chat, prompts
from unlearn_tasks.scoring import Scores


@dataclass(frozen=True)
class Prompting:
    """The prompts of one run. ``render`` is the single place a question becomes a context."""

    render: Callable[[str], str]
    convention: str = prompts.DEFAULT
    chat: bool = False
    answer_end: str = ""  # text scored after the answer: EOS, or the chat template's end of turn
    skip_tokens: int = 0  # continuation tokens that are the context's trailing whitespace

    def context(self, question: str) -> str:
        return self.render(question)

    def continuation(self, answer: str) -> str:
        if self.chat:
            return answer + self.answer_end
        return prompts.continuation(answer, self.convention, self.answer_end)

    def generation(self, question: str) -> tuple[str, dict]:
        return self.context(question), prompts.generation_kwargs(self.convention)

    @property
    def open_unlearning(self) -> bool:
        return self.convention == prompts.OPEN_UNLEARNING

    def answer_scores(self, scores: Scores) -> Scores:
        """Scores of the tokens the convention counts for probabilities."""
        return scores.skip(self.skip_tokens)

    def memorization_matches(self, scores: Scores) -> list[bool | None]:
        """Greedy matches the convention counts for ES/EM (open-unlearning also drops its last label)."""
        greedy = self.answer_scores(scores).greedy
        return greedy[:-1] if self.open_unlearning else greedy

    def describe(self, question: str, answer: str, scores: Scores) -> dict:
        """What was scored for one answer, for ``--log_samples``: texts and label positions (continuation
        token indices, lm-eval's split) of the probability and of ES/EM."""
        count = len(scores.logprobs)
        matched = count - 1 if self.open_unlearning else count
        return {
            "context": self.context(question), "continuation": self.continuation(answer),
            "generation_prompt": self.generation(question)[0], "continuation_tokens": count,
            "prob_labels": [self.skip_tokens, count], "es_em_labels": [self.skip_tokens, matched],
        }


def make_prompting(render: Callable[[str], str], convention: str, chat_messages: Callable | None, tokenization,
                   date_string: str) -> Prompting:
    """The run's :class:`Prompting`. ``chat_messages(question)`` gives the chat's messages before the
    answer when a chat template is applied; ``tokenization`` (lazy) is needed only when the context
    can end in whitespace or the convention scores EOS."""
    if chat_messages is None and convention == prompts.DEFAULT:
        return Prompting(render)
    sample = render("?")
    tokens = tokenization()
    skip = len(tokens.encode(sample)) - len(tokens.encode(sample.rstrip()))
    if chat_messages is None:
        return Prompting(render, convention, False, tokens.tokenizer.eos_token or "", skip)
    end = ""
    if convention == prompts.OPEN_UNLEARNING:
        end = chat.assistant_turn_end(tokens.tokenizer, chat_messages("?"), date_string)
    return Prompting(render, convention, True, end, skip)
