"""TOFU tasks: lm-eval adapters from (document, responses) to :mod:`unlearn_metrics`.

What each key means is documented in docs/metrics.md; the prompt lives in ``unlearn_tasks.prompts``.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import replace

from lm_eval.api.task import ConfigurableTask

from unlearn_metrics import rouge, tofu
from unlearn_tasks import attacks, chat, prompts, scoring
from unlearn_tasks.errors import MetadataError
from unlearn_tasks.request_cache import NoRequestCache
from unlearn_tasks.scoring import RequestBuilder, ScoredSequence, Scores
from unlearn_tasks.tofu import aggregations
from unlearn_tasks.tofu.prompting import Prompting, make_prompting
from unlearn_tasks.tofu.reference import PROMPT_SETTINGS_KEY, RetainReference, chat_template_setting, load_reference

logger = logging.getLogger(__name__)

#: Keys computed from per-token greedy matches (NaN where a match is unknown on the plain path).
MATCH_KEYS = frozenset({"es", "em", "es_para", "es_retain", "em_retain"})


class TofuTask(NoRequestCache, ConfigurableTask):
    """Shared machinery: builds each document's requests once and reads them back into metrics."""

    retain_reference: RetainReference | None = None  # metadata retain_ref, loaded by the tasks that use it

    def __init__(self, config: dict):
        config = {key: value for key, value in config.items() if key != "class"}
        config["process_results"] = self._process_document
        self.metadata = dict(config.get("metadata") or {})
        self.convention = self.metadata.get("convention", prompts.DEFAULT)
        if self.convention not in prompts.CONVENTIONS:
            raise MetadataError(
                f"unknown metadata convention {self.convention!r}; known: {', '.join(prompts.CONVENTIONS)}")
        self.attack = attacks.from_metadata(self.metadata)  # input attacks: unlearn_tasks.attacks
        self.metadata.setdefault("date_string", chat.DEFAULT_DATE)  # recorded in the results' task config
        chat.parse_date(self.metadata["date_string"])
        config["metadata"] = self.metadata
        # few-shot examples read "{doc_to_text}{delimiter}{doc_to_target}" like the scored text
        config.setdefault("target_delimiter", "" if self.convention == prompts.OPEN_UNLEARNING else " ")
        self._chat, self._options, self._render_options, self._prompting = False, None, {}, None
        super().__init__(config=config)
        self.builder = RequestBuilder(bool(self.metadata.get("token_details")), self.metadata)
        self._plans = {}
        self._unknown: dict[str, list[str]] = {}  # metric → documents whose value is NaN (plain path)

    def fewshot_context(self, doc, num_fewshot, system_instruction=None, apply_chat_template=False,
                        fewshot_as_multiturn=False, chat_template=None, gen_prefix=None):
        """lm-eval's prompt for the document's question. The run's options (system instruction, chat
        template, few-shot turns) are kept so every prompt of every document is rendered the same way."""
        options = dict(num_fewshot=num_fewshot, system_instruction=system_instruction, gen_prefix=gen_prefix,
                       apply_chat_template=apply_chat_template, fewshot_as_multiturn=fewshot_as_multiturn,
                       chat_template=chat_template)
        if options != self._options:
            self._options = options
            self._prompting = self._make_prompting(doc, **options)
            self._record_prompt_settings(chat_template if apply_chat_template else None, system_instruction)
        return self._prompting_for(doc).context(doc["question"])

    def _make_prompting(self, doc, *, system_instruction, apply_chat_template, chat_template, **options) -> Prompting:
        chat_messages = None
        if apply_chat_template and chat_template is not None:
            chat_template = chat.pinned_date(chat_template, self.metadata["date_string"])
            if system_instruction is None and self.convention == prompts.OPEN_UNLEARNING:
                system_instruction = chat.OPEN_UNLEARNING_SYSTEM_PROMPT
            system = [{"role": "system", "content": system_instruction}] if system_instruction else []
            chat_messages = lambda question: [*system, {"role": "user", "content": question}]  # noqa: E731
        self._render_options = dict(options, system_instruction=system_instruction,
                                    apply_chat_template=apply_chat_template, chat_template=chat_template)
        self._chat = chat_messages is not None
        return make_prompting(functools.partial(self._render, doc), self.convention, chat_messages,
                              lambda: self.builder.tokenizer, self.metadata["date_string"])

    def _record_prompt_settings(self, chat_template, system_instruction: str | None) -> None:
        """The chat template and system instruction the prompts are rendered with, into the task's metadata
        (the results' task config, where `unlearn-bench reference` reads them) and checked against a retain
        reference."""
        if chat_template is not None:
            chat_template = chat.pinned_date(chat_template, self.metadata["date_string"])
        settings = {"chat_template": chat_template_setting(chat_template), "system_instruction": system_instruction}
        self.metadata[PROMPT_SETTINGS_KEY] = settings
        if self.retain_reference is not None:
            self.retain_reference.check(settings)

    def _prompting_for(self, doc) -> Prompting:
        return replace(self._prompting, render=functools.partial(self._render, doc))

    def _render(self, doc, question: str) -> str:
        """The one place a question of ``doc`` becomes a prompt: lm-eval's own ``fewshot_context`` with the
        run's options (system instruction, description, few-shot examples, chat template)."""
        question = attacks.attacked_question(self.attack, doc, question)
        return super().fewshot_context({**doc, "question": question}, **self._render_options)

    def construct_requests(self, doc, ctx, **kwargs):
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        prompting = self._prompting_for(doc)
        sequences, generations = self.requests_for(doc, prompting)
        instances, plan = self.builder.build(doc, sequences, generations, **kwargs)
        self._plans[(doc["split"], doc["index"])] = (plan, prompting)
        return instances

    def _process_document(self, doc, results):
        plan, prompting = self._plans[(doc["split"], doc["index"])]
        scores, texts = self.builder.read(plan, results)
        texts = {name: text.strip() for name, text in texts.items()}
        values = self.metrics_for(doc, prompting, scores, texts)
        for key in MATCH_KEYS & values.keys():
            if math.isnan(values[key]):
                self._unknown.setdefault(key, []).append(f"{doc['split']}[{doc['index']}]")
        return values

    def aggregation(self):
        """lm-eval's aggregations, after one warning naming the documents whose matches stayed unknown."""
        if self._unknown:
            named = "; ".join(f"{key} of {', '.join(docs)}" for key, docs in self._unknown.items())
            logger.warning(
                "%s: NaN where per-token greedy matches are unknown on the plain lm-eval path (%s); every "
                "other key is exact. `unlearn-bench eval` computes them (docs/metrics.md, \"Scoring paths\")",
                self.config.task, named,
            )
            self._unknown = {}
        return super().aggregation()

    def reference_settings(self) -> dict:
        """The settings a retain reference must share with this run that are known before any prompt is
        rendered (the chat template and system instruction are checked in ``fewshot_context``)."""
        return {"convention": self.convention, "task_version": self.VERSION}

    def doc_to_text(self, doc, doc_to_text=None):
        """The user turn: open-unlearning's chat prompts hold the bare question, all others our template."""
        if self._chat and self.convention == prompts.OPEN_UNLEARNING:
            return doc["question"]
        return prompts.context(doc["question"], self.convention)

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["answer"]

    def requests_for(self, doc, prompting: Prompting):
        raise NotImplementedError

    def metrics_for(self, doc, prompting: Prompting, scores: dict[str, Scores], texts: dict[str, str]) -> dict:
        raise NotImplementedError


def _qa_sequences(doc, prompting: Prompting, correct: str, perturbed: list[str]) -> list[ScoredSequence]:
    """The answer (per token), the truth-ratio's correct answer (if another text) and the perturbed answers."""
    context = prompting.context(doc["question"])
    sequences = [ScoredSequence("answer", context, prompting.continuation(doc["answer"]), per_token=True)]
    if correct != "answer":
        sequences.append(ScoredSequence(correct, context, prompting.continuation(doc[correct])))
    sequences += [ScoredSequence(f"perturbed_{i}", context, prompting.continuation(text))
                  for i, text in enumerate(perturbed)]
    return sequences


def _truth_ratio(prompting: Prompting, scores: dict[str, Scores], correct: str, count: int) -> float:
    perturbed = [prompting.answer_scores(scores[f"perturbed_{i}"]).logprobs for i in range(count)]
    epsilon = 1e-10 if prompting.open_unlearning else 0.0
    return tofu.truth_ratio(prompting.answer_scores(scores[correct]).logprobs, perturbed, epsilon)


def _extraction_strength(prompting: Prompting, scores: Scores) -> float:
    return scoring.extraction_strength(prompting.memorization_matches(scores), prompting.open_unlearning)


def _exact_memorization(prompting: Prompting, scores: Scores) -> float:
    return scoring.exact_memorization(prompting.memorization_matches(scores))


def _probability(prompting: Prompting, scores: Scores) -> float:
    return tofu.probability(prompting.answer_scores(scores).logprobs)


class TofuForgetTask(TofuTask):
    """``unlearn_tofu_forgetXX``: memorisation of the forget set, and forget quality against a retain model."""

    def __init__(self, config: dict):
        super().__init__(config)
        path = self.metadata.get("retain_ref")
        if path:
            questions = [doc["question"] for doc in self.test_docs()]
            self.retain_reference = load_reference(path, self.config.task, questions, self.reference_settings())

    def aggregation(self):
        reference = None if self.retain_reference is None else self.retain_reference.values
        return {**super().aggregation(),
                "forget_quality": functools.partial(aggregations.forget_quality, reference=reference)}

    def requests_for(self, doc, prompting):
        sequences = _qa_sequences(doc, prompting, "paraphrased_answer", doc["perturbed_answer"])
        para_context = prompting.context(doc["paraphrased_question"])
        para_answer = prompting.continuation(doc["answer"])
        sequences.append(ScoredSequence("para_answer", para_context, para_answer, per_token=True))
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
            "em": _exact_memorization(prompting, scores["answer"]),
            "prob_para": _probability(prompting, scores["para_answer"]),
            "es_para": _extraction_strength(prompting, scores["para_answer"]),
            "forget_quality": {"index": doc["index"], "truth_ratio": ratio},
            "answer_tokens": prompting.describe(doc["question"], doc["answer"], scores["answer"]),
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
            values["em_retain"] = _exact_memorization(prompting, scores["answer"])
        values["answer_tokens"] = prompting.describe(doc["question"], doc["answer"], scores["answer"])
        values["model_utility"] = (split, probability, values[f"rougeL_recall_{split}"], values[f"truth_ratio_{split}"])
        return values
