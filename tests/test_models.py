"""``unlearn_hf`` answers lm-eval's loglikelihood requests exactly as HFLM does, with less work."""

from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness_ext.models import TokenScores, UnlearnHFLM
from harness_ext.tiny_model import build_tiny_model

CONTEXTS = ["Question: Who wrote it?\nAnswer:", "Question: Where was she born?\nAnswer:"]
CHOICES = [" A", " B", " C", " D", " Paris is lovely", " A"]  # the repeated " A" is scored once


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(CONTEXTS + [c.strip() for c in CHOICES] * 3, vocab_size=300, seed=1)


def _requests():
    pairs = [(context, choice) for context in CONTEXTS for choice in CHOICES]
    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


def test_same_answers_as_hflm_with_one_forward_per_input(tiny):
    model, tokenizer = tiny
    ours = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    reference = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    got, expected = ours.loglikelihood(_requests()), reference.loglikelihood(_requests())
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, expected):
        assert ll == pytest.approx(ll_ref, rel=1e-5)
        assert greedy == greedy_ref
    assert all(isinstance(answer, TokenScores) and len(answer.logprobs) >= 1 for answer in got)
    # one forward per distinct model input (all tokens but the last): choices that differ only in
    # their last token share one, like HFLM's one-token-continuation cache
    inputs = {tuple(sum(reference._encode_pair(*request.args), [])[:-1]) for request in _requests()}
    assert len(inputs) < len(set(CHOICES)) * len(CONTEXTS)
    assert ours.stats["sequences_scored"] == len(inputs)
    assert ours.stats["loglikelihood_requests"] == len(CONTEXTS) * len(CHOICES)


def test_token_details_add_up_to_the_loglikelihood(tiny):
    model, tokenizer = tiny
    answers = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu").loglikelihood(_requests())
    for answer in answers:
        ll, greedy = answer
        assert sum(answer.logprobs) == pytest.approx(ll)
        assert greedy == all(answer.greedy)
        assert all(v >= 0 for v in answer.variances)
