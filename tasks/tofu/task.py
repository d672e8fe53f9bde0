"""TOFU tasks: lm-eval adapters from (document, responses) to :mod:`unlearn_metrics`.

What each key means is documented in docs/metrics.md; the prompt lives in ``unlearn_tasks.prompts``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable

from lm_eval.api.task import ConfigurableTask

from unlearn_metrics import memorization, rouge, tofu
from unlearn_tasks import attacks, prompts
from unlearn_tasks.scoring import RequestBuilder, Scores, Sequence, greedy_matches
from unlearn_tasks.tofu import aggregations
from unlearn_tasks.tofu.reference import load_reference

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompting:
    """The prompt of one run: convention, optional chat template, and what the convention adjusts."""

    convention: str = prompts.DEFAULT
    chat_template: Callable | None = None
    eos_text: str = ""
    skip_tokens: int = 0  # open-unlearning: answer tokens its label mask hides (the merged space)

    def context(self, question: str) -> str:
        if self.chat_template is not None:
            return self.chat_template([{"role": "user", "content": question}])
        return prompts.context(question, self.convention)

    def continuation(self, answer: str) -> str:
        if self.chat_template is not None:
            return answer
        return prompts.continuation(answer, self.convention, self.eos_text)

    def generation(self, question: str) -> tuple[str, dict]:
        return self.context(question), prompts.generation_kwargs(self.convention)

    @property
    def open_unlearning(self) -> bool:
        return self.convention == prompts.OPEN_UNLEARNING

    def answer_scores(self, scores: Scores) -> Scores:
        """Scores of the tokens the convention counts for probabilities."""
        return scores.skip(self.skip_tokens)

    def memorization_matches(self, scores: Scores) -> list[bool]:
        """Greedy matches the convention counts for ES/EM (open-unlearning also drops the EOS)."""
        greedy = greedy_matches(self.answer_scores(scores))
        return greedy[:-1] if self.open_unlearning else greedy


class TofuTask(ConfigurableTask):
    """Shared machinery: builds each document's requests once and reads them back into metrics."""

    def __init__(self, config: dict):
        config = {key: value for key, value in config.items() if key != "class"}
        config["process_results"] = self._process_document
        self.metadata = dict(config.get("metadata") or {})
        self.convention = self.metadata.get("convention", prompts.DEFAULT)
        if self.convention not in prompts.CONVENTIONS:
            raise ValueError(f"unknown convention {self.convention!r}; known: {', '.join(prompts.CONVENTIONS)}")
        self.attack = attacks.from_metadata(self.metadata)  # input attacks: unlearn_tasks.attacks
        super().__init__(config=config)
        self.builder = RequestBuilder(bool(self.metadata.get("token_details")), self.metadata)
        self._plans, self._promptings = {}, {}

    def construct_requests(self, doc, ctx, **kwargs):
        kwargs.pop("apply_chat_template", None)
        chat_template = kwargs.pop("chat_template", None)
        if chat_template not in self._promptings:
            self._promptings[chat_template] = self._prompting(chat_template)
        prompting = self._promptings[chat_template]
        sequences, generations = self.requests_for(self._attacked(doc), prompting)
        instances, plan = self.builder.build(doc, sequences, generations, **kwargs)
        self._plans[(doc["split"], doc["index"])] = (plan, prompting)
        return instances

    def _attacked(self, doc) -> dict:
        """The document as the input attack shows it: its question and paraphrased question rewritten."""
        fields = [field for field in ("question", "paraphrased_question") if doc.get(field)]
        return {**doc, **{field: attacks.attacked_question(self.attack, doc, doc[field]) for field in fields}}

    def _process_document(self, doc, results):
        plan, prompting = self._plans[(doc["split"], doc["index"])]
        scores, texts = self.builder.read(plan, results)
        texts = {name: text.strip() for name, text in texts.items()}
        return self.metrics_for(doc, prompting, scores, texts)

    def _prompting(self, chat_template) -> Prompting:
        if chat_template is not None:
            if self.convention == prompts.OPEN_UNLEARNING:
                raise ValueError("the open-unlearning convention is defined without a chat template")
            return Prompting(chat_template=chat_template)
        if self.convention == prompts.DEFAULT:
            return Prompting()
        tokenization = self.builder.tokenizer
        sample = prompts.context("?", self.convention)
        skip = len(tokenization.encode(sample)) - len(tokenization.encode(sample.rstrip()))
        return Prompting(self.convention, None, tokenization.tokenizer.eos_token or "", skip)

    def doc_to_text(self, doc, doc_to_text=None):
        return prompts.context(doc["question"], self.convention)

    def doc_to_target(self, doc, doc_to_target=None):
        return prompts.continuation(doc["answer"], self.convention)

    def requests_for(self, doc, prompting: Prompting):
        raise NotImplementedError

    def metrics_for(self, doc, prompting: Prompting, scores: dict[str, Scores], texts: dict[str, str]) -> dict:
        raise NotImplementedError


def _qa_sequences(doc, prompting: Prompting, correct: str, perturbed: list[str]) -> list[Sequence]:
    """The answer (per token), the truth-ratio's correct answer (if another text) and the perturbed answers."""
    context = prompting.context(doc["question"])
    sequences = [Sequence("answer", context, prompting.continuation(doc["answer"]), per_token=True)]
    if correct != "answer":
        sequences.append(Sequence(correct, context, prompting.continuation(doc[correct])))
    sequences += [Sequence(f"perturbed_{i}", context, prompting.continuation(text)) for i, text in enumerate(perturbed)]
    return sequences


def _truth_ratio(prompting: Prompting, scores: dict[str, Scores], correct: str, count: int) -> float:
    perturbed = [prompting.answer_scores(scores[f"perturbed_{i}"]).logprobs for i in range(count)]
    epsilon = 1e-10 if prompting.open_unlearning else 0.0
    return tofu.truth_ratio(prompting.answer_scores(scores[correct]).logprobs, perturbed, epsilon)


def _extraction_strength(prompting: Prompting, scores: Scores) -> float:
    return memorization.extraction_strength(prompting.memorization_matches(scores), prompting.open_unlearning)


def _probability(prompting: Prompting, scores: Scores) -> float:
    return tofu.probability(prompting.answer_scores(scores).logprobs)


class TofuForgetTask(TofuTask):
    """``unlearn_tofu_forgetXX``: memorisation of the forget set, and forget quality against a retain model."""

    def __init__(self, config: dict):
        super().__init__(config)
        reference = self._reference()
        self._aggregation_list["forget_quality"] = functools.partial(aggregations.forget_quality, reference=reference)

    def _reference(self) -> list[float] | None:
        path = self.metadata.get("retain_ref")
        if not path:
            return None
        questions = [doc["question"] for doc in self.test_docs()]
        return load_reference(path, self.config.task, questions)

    def requests_for(self, doc, prompting):
        sequences = _qa_sequences(doc, prompting, "paraphrased_answer", doc["perturbed_answer"])
        para_context = prompting.context(doc["paraphrased_question"])
        sequences.append(Sequence("para_answer", para_context, prompting.continuation(doc["answer"]), per_token=True))
        generations = {"answer": prompting.generation(doc["question"])}
        if not prompting.open_unlearning:
            generations["para_answer"] = prompting.generation(doc["paraphrased_question"])
        return sequences, generations

    def metrics_for(self, doc, prompting, scores, texts):
        ratio = _truth_ratio(prompting, scores, "paraphrased_answer", len(doc["perturbed_answer"]))
        values = {
            "prob": _probability(prompting, scores["answer"]),
            "rougeL_recall": rouge.rouge_l_recall(texts["answer"], doc["answer"]),
            "truth_ratio": tofu.truth_ratio_closer_to_one([ratio]),
            "es": _extraction_strength(prompting, scores["answer"]),
            "em": memorization.exact_memorization(prompting.memorization_matches(scores["answer"])),
            "prob_para": _probability(prompting, scores["para_answer"]),
            "es_para": _extraction_strength(prompting, scores["para_answer"]),
            "forget_quality": {"index": doc["index"], "truth_ratio": ratio},
        }
        if "para_answer" in texts:
            values["rougeL_recall_para"] = rouge.rouge_l_recall(texts["para_answer"], doc["answer"])
        return values


class TofuUtilityTask(TofuTask):
    """``unlearn_tofu_utility``: retain set, real authors and world facts, and their harmonic mean."""

    def requests_for(self, doc, prompting):
        correct = "paraphrased_answer" if doc["split"] == "retain" else "answer"
        sequences = _qa_sequences(doc, prompting, correct, doc["perturbed_answer"])
        return sequences, {"answer": prompting.generation(doc["question"])}

    def metrics_for(self, doc, prompting, scores, texts):
        split = doc["split"]
        count = len(doc["perturbed_answer"])
        if split == "retain":
            probability = _probability(prompting, scores["answer"])
            ratio = _truth_ratio(prompting, scores, "paraphrased_answer", count)
        else:
            perturbed = [_probability(prompting, scores[f"perturbed_{i}"]) for i in range(count)]
            probability = tofu.normalised_probability(_probability(prompting, scores["answer"]), perturbed)
            ratio = _truth_ratio(prompting, scores, "answer", count)
        values = {
            f"prob_{split}": probability,
            f"rougeL_recall_{split}": rouge.rouge_l_recall(texts["answer"], doc["answer"]),
            f"truth_ratio_{split}": tofu.truth_ratio_true_better([ratio]),
        }
        if split == "retain":
            values["es_retain"] = _extraction_strength(prompting, scores["answer"])
            values["em_retain"] = memorization.exact_memorization(prompting.memorization_matches(scores["answer"]))
        values["model_utility"] = (split, probability, values[f"rougeL_recall_{split}"], values[f"truth_ratio_{split}"])
        return values
