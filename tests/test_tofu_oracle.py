"""The TOFU tasks agree with a direct transformers computation written independently here.

The model memorised forget01 and 40 retain questions, so the values are far from zero.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rouge_score import rouge_scorer
from transformers import AutoModelForCausalLM, AutoTokenizer

from unlearn_tasks.tofu.data import load_tofu

UTILITY_DOCS = list(range(8)) + [400, 401, 402, 500, 501, 502]  # retain, real authors, world facts
FORGET_DOCS = 12


@pytest.fixture(scope="module")
def oracle(memorised_model):
    model = AutoModelForCausalLM.from_pretrained(memorised_model, dtype=torch.float32).eval()
    return Oracle(model, AutoTokenizer.from_pretrained(memorised_model))


class Oracle:
    """Per-token log-probs and greedy matches from one unbatched forward pass, in float64."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    @torch.no_grad()
    def tokens(self, question: str, answer: str):
        context = f"Question: {question}\nAnswer:"
        prefix = self.tokenizer.encode(context)
        whole = self.tokenizer.encode(context + " " + answer)
        logits = self.model(torch.tensor([whole])).logits[0, :-1].double().log_softmax(-1)
        targets = torch.tensor(whole[1:])
        picked = logits[torch.arange(len(targets)), targets][len(prefix) - 1:]
        greedy = (logits.argmax(-1) == targets)[len(prefix) - 1:]
        return picked.numpy(), greedy.numpy()

    def prob(self, question, answer):
        return math.exp(self.tokens(question, answer)[0].mean())

    def ratio(self, question, correct, perturbed):
        wrong = np.mean([-self.tokens(question, text)[0].mean() for text in perturbed])
        return math.exp(-wrong) / self.prob(question, correct)

    def es(self, question, answer):
        greedy = self.tokens(question, answer)[1]
        suffix = len(greedy)
        while suffix > 0 and greedy[suffix - 1]:
            suffix -= 1
        return 1 - suffix / len(greedy)

    def em(self, question, answer):
        return float(self.tokens(question, answer)[1].mean())

    @torch.no_grad()
    def generate(self, question):
        ids = torch.tensor([self.tokenizer.encode(f"Question: {question}\nAnswer:")])
        out = self.model.generate(ids, max_new_tokens=200, do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
        text = self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        return text.split("\nQuestion:")[0].strip()

    def rouge_recall(self, question, answer):
        return self.rouge.score(answer, self.generate(question))["rougeL"].recall


def _evaluate(lm, metadata=None):
    from harness_ext.evaluation import evaluate

    samples = {"unlearn_tofu_forget01": list(range(FORGET_DOCS)), "unlearn_tofu_utility": UTILITY_DOCS}
    return evaluate(lm, list(samples), samples=samples, metadata=metadata)["results"]


@pytest.fixture(scope="module")
def detailed_results(memorised_model):
    from harness_ext.models import UnlearnHFLM

    return _evaluate(UnlearnHFLM(pretrained=str(memorised_model), batch_size=8, device="cpu"))


@pytest.fixture(scope="module")
def expected_forget(oracle, tofu_data_dir):
    docs = list(load_tofu("forget01_perturbed"))[:FORGET_DOCS]
    ratios = [oracle.ratio(d["question"], d["paraphrased_answer"], d["perturbed_answer"]) for d in docs]
    mean = lambda f, field="question": float(np.mean([f(d[field], d["answer"]) for d in docs]))  # noqa: E731
    return {
        "prob": mean(oracle.prob),
        "truth_ratio": float(np.mean([min(r, 1 / r) for r in ratios])),
        "es": mean(oracle.es),
        "em": mean(oracle.em),
        "prob_para": mean(oracle.prob, "paraphrased_question"),
        "es_para": mean(oracle.es, "paraphrased_question"),
        "rougeL_recall": mean(oracle.rouge_recall),
        "rougeL_recall_para": mean(oracle.rouge_recall, "paraphrased_question"),
    }


@pytest.fixture(scope="module")
def expected_utility(oracle, tofu_data_dir):
    from unlearn_tasks.tofu.documents import tofu_utility_documents

    docs = [tofu_utility_documents()["test"][i] for i in UTILITY_DOCS]
    values = {}
    for split in ("retain", "ra", "wf"):
        rows = [d for d in docs if d["split"] == split]
        probs, ratios = [], []
        for d in rows:
            p = oracle.prob(d["question"], d["answer"])
            if split == "retain":
                probs.append(p)
                ratios.append(oracle.ratio(d["question"], d["paraphrased_answer"], d["perturbed_answer"]))
            else:
                probs.append(p / (p + sum(oracle.prob(d["question"], t) for t in d["perturbed_answer"])))
                ratios.append(oracle.ratio(d["question"], d["answer"], d["perturbed_answer"]))
        values[f"prob_{split}"] = float(np.mean(probs))
        values[f"truth_ratio_{split}"] = float(np.mean([max(0.0, 1 - r) for r in ratios]))
        values[f"rougeL_recall_{split}"] = float(np.mean([oracle.rouge_recall(d["question"], d["answer"]) for d in rows]))
    retain = [d for d in docs if d["split"] == "retain"]
    values["es_retain"] = float(np.mean([oracle.es(d["question"], d["answer"]) for d in retain]))
    values["em_retain"] = float(np.mean([oracle.em(d["question"], d["answer"]) for d in retain]))
    nine = [values[f"{m}_{s}"] for s in ("retain", "ra", "wf") for m in ("prob", "rougeL_recall", "truth_ratio")]
    values["model_utility"] = 0.0 if min(nine) == 0 else len(nine) / sum(1 / v for v in nine)
    return values


def _assert_agree(results: dict, expected: dict):
    for key, value in expected.items():
        if key.startswith("rougeL"):
            # same greedy generations → identical per-item ROUGE; only the mean's summation order differs
            assert results[f"{key},none"] == pytest.approx(value, rel=1e-12, abs=0), key
        else:
            assert results[f"{key},none"] == pytest.approx(value, rel=1e-5), key


def test_model_memorised_the_forget_set(expected_forget):
    assert expected_forget["rougeL_recall"] >= 0.6
    assert expected_forget["es"] > 0.5


def test_forget_task_matches_direct_computation(detailed_results, expected_forget):
    _assert_agree(detailed_results["unlearn_tofu_forget01"], expected_forget)


def test_utility_task_matches_direct_computation(detailed_results, expected_utility):
    _assert_agree(detailed_results["unlearn_tofu_utility"], expected_utility)


def test_plain_hf_fallback_matches_direct_computation(memorised_model, expected_forget, expected_utility):
    from lm_eval.models.huggingface import HFLM

    results = _evaluate(HFLM(pretrained=str(memorised_model), batch_size=8, device="cpu"),
                        metadata={"pretrained": str(memorised_model)})
    _assert_agree(results["unlearn_tofu_forget01"], expected_forget)
    _assert_agree(results["unlearn_tofu_utility"], expected_utility)


def _unique_work():
    """Unique (context + continuation) texts and unique generation prompts the two tasks need."""
    from unlearn_tasks.tofu.documents import tofu_utility_documents

    forget = list(load_tofu("forget01_perturbed"))[:FORGET_DOCS]
    utility = [tofu_utility_documents()["test"][i] for i in UTILITY_DOCS]
    sequences, prompts = set(), set()
    for doc in forget + utility:
        answers = [doc["answer"], *doc["perturbed_answer"]] + ([doc["paraphrased_answer"]] if doc["paraphrased_answer"] else [])
        sequences |= {(doc["question"], answer) for answer in answers}
        prompts.add(doc["question"])
    for doc in forget:
        sequences.add((doc["paraphrased_question"], doc["answer"]))
        prompts.add(doc["paraphrased_question"])
    return sequences, prompts


def test_one_forward_pass_per_unique_sequence(memorised_model):
    from harness_ext.models import UnlearnHFLM

    lm = UnlearnHFLM(pretrained=str(memorised_model), batch_size=8, device="cpu")
    _evaluate(lm)
    sequences, prompts = _unique_work()
    # forget: answer, paraphrased answer, 5 perturbed, answer after the paraphrased question; utility:
    # retain 1 + 1 + 5, ra/wf 1 + 3 per document
    assert lm.stats["loglikelihood_requests"] == FORGET_DOCS * 8 + 8 * 7 + 6 * 4
    assert lm.stats["sequences_scored"] == len(sequences)
    assert lm.stats["generation_requests"] == FORGET_DOCS * 2 + len(UTILITY_DOCS)
    assert lm.stats["generations"] == len(prompts)
