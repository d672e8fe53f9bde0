"""Membership inference on TOFU: per-sample attack scores as lm-eval adapters to :mod:`unlearn_metrics.mia`.

Members are the forget set's question/answer pairs, non-members the holdout set's. Every attack scores
the answer tokens given the TOFU prompt (the same sequence ``unlearn_tofu_forgetXX`` scores, so with
``unlearn_hf`` it is one forward pass for both). What each key means is documented in docs/metrics.md.
"""

from __future__ import annotations

import functools

from unlearn_metrics import mia
from unlearn_tasks.mia import aggregations
from unlearn_tasks.scoring import ScoredSequence, Scores
from unlearn_tasks.tofu.reference import load_mia_reference
from unlearn_tasks.tofu.task import TofuTask

#: Fraction of lowest-scoring tokens averaged by Min-K% and Min-K%++ (open-unlearning's TOFU default).
K = 0.4


class MembershipTask(TofuTask):
    """``unlearn_tofu_mia_forgetXX``: LOSS, ZLib, Min-K%, Min-K%++ AUCs and PrivLeak against a retain model."""

    def __init__(self, config: dict):
        super().__init__(config)
        path = self.metadata.get("retain_ref")
        if path:
            members = sum(1 for doc in self.test_docs() if doc["member"])
            self.retain_reference = load_mia_reference(path, self.config.task, members,
                                                       len(self.test_docs()) - members, self.reference_settings())

    def aggregation(self):
        reference = None if self.retain_reference is None else self.retain_reference.values
        return {**super().aggregation(), "privleak": functools.partial(aggregations.privleak, reference=reference)}

    def requests_for(self, doc, prompting):
        context = prompting.context(doc["question"])
        return [ScoredSequence("answer", context, prompting.continuation(doc["answer"]), per_token=True, moments=True)], {}

    def metrics_for(self, doc, prompting, scores, texts):
        answer = attacked_tokens(prompting, scores["answer"])
        member = bool(doc["member"])
        minkpp = None  # the fallback path has no next-token distribution: auc_minkpp becomes NaN
        if answer.means is not None:
            minkpp = mia.min_k_plus_plus_score(answer.logprobs, answer.means, answer.variances, K)
        values = {
            "auc_loss": (member, mia.loss_score(answer.logprobs)),
            "auc_zlib": (member, mia.zlib_score(answer.logprobs, doc["answer"])),
            # a plain-path group (tokens inside one character) has only its sum: Min-K% is unknown
            "auc_mink": (member, mia.min_k_score(answer.logprobs, K) if answer.exact_tokens else None),
            "auc_minkpp": (member, minkpp),
        }
        values["privleak"] = values[aggregations.PRIVLEAK_INPUT]
        return values


def attacked_tokens(prompting, scores: Scores) -> Scores:
    """The answer tokens the attacks score: the convention's answer tokens, except that the
    open-unlearning convention's final EOS is left out (its MIA attacks do not score it, unlike its
    probabilities: checked item by item against its evaluator's Min-K% scores)."""
    answer = prompting.answer_scores(scores)
    if not prompting.open_unlearning:
        return answer
    return answer.slice(0, -1)
