"""Training batches tokenise and score answers exactly as lm-eval's tasks do."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from harness_ext.unlearning.batches import IGNORE, collate, encode_rows, unlearn_loader
from harness_ext.unlearning.logprobs import logits_of, sequence_logprob
from tests.unlearning_fixtures import forget_rows, load, retain_rows
from unlearn_tasks.prompts import training_text


def test_sequence_logprobs_equal_lm_evals_loglikelihood(memorised_model):
    model, tokenizer = load(memorised_model)
    rows = forget_rows()[:6]
    batch = collate(encode_rows(tokenizer, rows, 512), tokenizer.pad_token_id)
    with torch.no_grad():
        ours, lengths = sequence_logprob(logits_of(model, batch), batch)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=1)
    requests = [Instance("loglikelihood", {}, training_text(row["question"], row["answer"]), index)
                for index, row in enumerate(rows)]
    theirs = [loglikelihood for loglikelihood, _ in lm.loglikelihood(requests, disable_tqdm=True)]
    assert ours.tolist() == pytest.approx(theirs, abs=1e-4)
    for row, length in zip(rows, lengths.tolist()):
        context, continuation = training_text(row["question"], row["answer"])
        assert length == len(lm._encode_pair(context, continuation)[1])


def test_only_answer_tokens_are_labelled(memorised_model):
    _, tokenizer = load(memorised_model)
    row = forget_rows()[0]
    example = encode_rows(tokenizer, [row], 512)[0]
    prompt, target = training_text(row["question"], row["answer"])
    answer = [label for label in example.labels if label != IGNORE]
    assert tokenizer.decode(answer) == target
    assert example.labels[: len(tokenizer(prompt)["input_ids"])] == [IGNORE] * len(tokenizer(prompt)["input_ids"])
    assert example.input_ids[-1] != tokenizer.eos_token_id  # nothing appended: the tasks score no EOS


def test_each_forget_batch_is_paired_with_a_seeded_random_retain_batch(memorised_model):
    _, tokenizer = load(memorised_model)

    def batches(seed):
        loader = unlearn_loader(tokenizer, forget_rows(), retain_rows(), 8, seed, 512, refusals=["No idea."])
        return [(step.forget.input_ids.tolist(), step.retain.input_ids.tolist()) for step in loader]

    first = batches(0)
    assert len(first) == 5 and first == batches(0) and first != batches(1)
    loader = unlearn_loader(tokenizer, forget_rows(), retain_rows(), 8, 0, 512, refusals=["No idea."])
    step = next(iter(loader))
    assert step.retain.input_ids.shape[0] == step.forget.input_ids.shape[0] == step.refusal.input_ids.shape[0] == 8
    refusal = [label for label in step.refusal.labels[0].tolist() if label != IGNORE]
    assert tokenizer.decode(refusal) == " No idea."
