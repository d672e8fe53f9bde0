"""MUSE tasks: lm-eval adapters from (document, responses) to :mod:`unlearn_metrics.muse` and
:mod:`unlearn_metrics.mia`. Definitions (those of MUSE's reference evaluation) are in docs/metrics.md.

Requests go through ``unlearn_tasks.scoring.RequestBuilder``, so with ``unlearn_hf`` each unique text is
forwarded or generated from once. MUSE defines the plain-text prompt only: a chat template is refused.
"""

from __future__ import annotations

import functools
import logging

from lm_eval.api.task import ConfigurableTask

from unlearn_metrics import mia, muse
from unlearn_tasks import prompts
from unlearn_tasks.errors import MetadataError
from unlearn_tasks.muse import aggregations
from unlearn_tasks.muse.context import ContextLimit
from unlearn_tasks.request_cache import NoRequestCache
from unlearn_tasks.scoring import RequestBuilder, ScoredSequence

logger = logging.getLogger(__name__)

VERBMEM_MAX_NEW_TOKENS = 128
KNOWMEM_MAX_NEW_TOKENS = 32
#: Min-K% (and Min-K%++) fraction: MUSE's headline attack is Min-40%.
K = 0.4


def greedy(max_new_tokens: int, until: list[str]) -> dict:
    return {"until": list(until), "max_gen_toks": max_new_tokens, "do_sample": False, "temperature": 0.0}


class MuseTask(NoRequestCache, ConfigurableTask):
    """Shared parts: each document's requests built once (``RequestBuilder``) and read back into metrics;
    plain prompts only; generations are read unstripped (MUSE does not strip). ``GENERATION``: the
    task's generation settings, also recorded as its config's ``generation_kwargs``."""

    GENERATION: dict | None = None

    def __init__(self, config: dict):
        config = {key: value for key, value in config.items() if key != "class"}
        if self.GENERATION is not None:
            config["generation_kwargs"] = dict(self.GENERATION)
        config["process_results"] = self._process_document
        self.metadata = dict(config.get("metadata") or {})
        super().__init__(config=config)
        self.builder = RequestBuilder(bool(self.metadata.get("token_details")), self.metadata)
        self._plans = {}

    def construct_requests(self, doc, ctx, **kwargs):
        if kwargs.pop("apply_chat_template", False):
            raise MetadataError(
                f"{self.config.task}: MUSE defines a plain-text prompt only; drop --apply_chat_template")
        kwargs.pop("chat_template", None)
        sequences, generations = self.requests_for(doc)
        instances, plan = self.builder.build(doc, sequences, generations, **kwargs)
        self._plans[(doc["split"], doc["index"])] = plan
        return instances

    def _process_document(self, doc, results):
        scores, texts = self.builder.read(self._plans[(doc["split"], doc["index"])], results)
        return self.metrics_for(doc, scores, texts)

    @functools.cached_property
    def tokenizer(self):
        """The evaluated model's tokenizer (model args ``tokenizer`` or ``pretrained``, in the metadata)."""
        from transformers import AutoTokenizer

        name = next((self.metadata.get(key) for key in ("tokenizer", "pretrained") if isinstance(self.metadata.get(key), str)), None)
        if name is None:
            raise MetadataError(
                f"{self.config.task} needs the model's tokenizer: pass pretrained=<path or hub id> in --model_args")
        return AutoTokenizer.from_pretrained(name, trust_remote_code=bool(self.metadata.get("trust_remote_code")))

    def requests_for(self, doc) -> tuple[list[ScoredSequence], dict[str, tuple[str, dict]]]:
        raise NotImplementedError

    def metrics_for(self, doc, scores, texts) -> dict:
        raise NotImplementedError


class VerbmemTask(MuseTask):
    """``unlearn_muse_<corpus>_verbmem``: greedy continuation of the passage's opening vs its true continuation."""

    GENERATION = greedy(VERBMEM_MAX_NEW_TOKENS, [])

    def doc_to_text(self, doc, doc_to_text=None):
        return doc["prompt"]

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["gt"]

    def requests_for(self, doc):
        return [], {"output": (doc["prompt"], dict(self.GENERATION))}

    def reference(self, gt: str) -> str:
        """``gt`` cut to its first 128 tokens (special tokens included, as MUSE tokenises), decoded."""
        tokens = self.tokenizer(gt, add_special_tokens=True)["input_ids"][:VERBMEM_MAX_NEW_TOKENS]
        return self.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=True)

    def metrics_for(self, doc, scores, texts):
        f1, recall = muse.rouge_l(texts["output"], self.reference(doc["gt"]))
        return {"rougeL_f1": f1, "rougeL_recall": recall}


def knowmem_prompt(doc) -> str:
    shots = "".join(f"Question: {pair['question']}\nAnswer: {pair['answer']}\n\n" for pair in doc["icl"])
    return f"{shots}Question: {doc['question']}\nAnswer: "


class KnowmemTask(MuseTask):
    """``unlearn_muse_<corpus>_knowmem_forget|retain``: 10-shot question answering, ROUGE-L F1."""

    GENERATION = greedy(KNOWMEM_MAX_NEW_TOKENS, list(muse.KNOWMEM_STOPS))

    def doc_to_text(self, doc, doc_to_text=None):
        return knowmem_prompt(doc)

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["answer"]

    def requests_for(self, doc):
        return [], {"output": (knowmem_prompt(doc), dict(self.GENERATION))}

    def metrics_for(self, doc, scores, texts):
        f1, _ = muse.rouge_l(muse.cut_knowmem_answer(texts["output"]), doc["answer"])
        return {"rougeL_f1": f1}


class PrivleakTask(MuseTask):
    """``unlearn_muse_<corpus>_privleak``: MIA AUCs of forget (members) vs holdout texts, and PrivLeak."""

    def __init__(self, config: dict):
        super().__init__(config)
        # MUSE prompts are plain text (a chat template is refused): the convention metadata and the task
        # version are the settings a retain reference must share with this run.
        settings = {"convention": self.metadata.get("convention", prompts.DEFAULT), "task_version": self.VERSION}
        self.retrain_auc = aggregations.retrain_auc(self.metadata, self.config.task, self.test_docs(), settings)

    def aggregation(self):
        return {**super().aggregation(),
                "privleak": functools.partial(aggregations.privleak, muse_auc_retrain=self.retrain_auc)}

    def doc_to_text(self, doc, doc_to_text=None):
        return ""

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["text"]

    @functools.cached_property
    def limit(self) -> ContextLimit:
        return ContextLimit(self.tokenizer, self.metadata)

    def requests_for(self, doc):
        return [ScoredSequence("text", "", self.limit.fit(doc["text"]), per_token=True, moments=True)], {}

    def metrics_for(self, doc, scores, texts):
        text = scores["text"]
        member = bool(doc["member"])
        minkpp = None if text.means is None else mia.min_k_plus_plus_score(text.logprobs, text.means, text.variances, K)
        values = {
            "auc_mink40": (member, mia.min_k_score(text.logprobs, K)),
            "auc_loss": (member, mia.loss_score(text.logprobs)),
            "auc_zlib": (member, mia.zlib_score(text.logprobs, self.limit.fit(doc["text"]))),
            "auc_minkpp": (member, minkpp),
        }
        values["privleak"] = values["auc_mink40"]
        return values
