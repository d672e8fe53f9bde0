"""Fluency tasks: lm-eval adapters from the greedy answer generations to :mod:`unlearn_metrics.fluency`.

The generation request is the TOFU tasks' own (same prompt, same generation kwargs), so with
``unlearn_hf`` one generation per question serves ``unlearn_tofu_*`` and ``unlearn_fluency_*``.
What each key means is documented in docs/metrics.md.
"""

from __future__ import annotations

import functools

from unlearn_metrics import fluency
from unlearn_tasks import prompts
from unlearn_tasks.errors import MetadataError
from unlearn_tasks.fluency.perplexity import reference_perplexity
from unlearn_tasks.tofu.task import TofuTask


class FluencyTask(TofuTask):
    """``unlearn_fluency_*``: token entropy, repeated 3-grams, length and (optionally) reference perplexity.

    Tokens are those of the generation as lm-eval returns it (stop string removed), re-tokenised with
    the evaluated model's tokenizer without special tokens (the task sees text, not token ids).
    ``ppl_ref`` is reported only when metadata ``fluency_ref`` names a checkpoint.
    """

    def __init__(self, config: dict):
        # The generation settings recorded in the task config are the ones its requests use.
        convention = (config.get("metadata") or {}).get("convention", prompts.DEFAULT)
        super().__init__({**config, "generation_kwargs": prompts.generation_kwargs(convention)})
        self.reference_checkpoint = self.metadata.get("fluency_ref") or None

    def aggregation(self):
        return {**super().aggregation(),
                "ppl_ref": functools.partial(reference_perplexity, checkpoint=self.reference_checkpoint)}

    @functools.cached_property
    def _tokenizer(self):
        try:
            return self.builder.tokenizer.tokenizer
        except (ValueError, OSError) as error:
            raise MetadataError(
                f"{self.config.task} counts generated tokens with the evaluated model's tokenizer, "
                f"from metadata pretrained/tokenizer: {error}"
            ) from None

    def requests_for(self, doc, prompting):
        return [], {"answer": prompting.generation(doc["question"])}

    def _process_document(self, doc, results):
        # The raw generation (not stripped as the TOFU metrics use it): its tokens are what the model wrote.
        plan, prompting = self._plans[(doc["split"], doc["index"])]
        _, texts = self.builder.read(plan, results)
        return self.metrics_for(doc, prompting, {}, texts)

    def metrics_for(self, doc, prompting, scores, texts):
        generation = texts["answer"]
        tokens = self._tokenizer.encode(generation, add_special_tokens=False)
        values = {"token_entropy": fluency.token_entropy(tokens), "rep3": fluency.rep3(generation), "gen_len": len(tokens)}
        if self.reference_checkpoint:
            values["ppl_ref"] = {"context": prompting.context(doc["question"]), "generation": generation}
        return values
