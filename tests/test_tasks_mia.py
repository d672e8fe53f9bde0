"""The unlearn_tofu_mia_* tasks, their retain reference and the unlearn_all_* groups, through lm-eval.

Scripted per-token scores give AUCs counted by hand; a real tiny model's per-sample scores are checked
against a direct transformers computation; both scoring paths agree; a model is its own retain model.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from pathlib import Path

import lm_eval
import pytest
import torch
from lm_eval.api.model import LM
from lm_eval.models.huggingface import HFLM

from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from harness_ext.evaluation import evaluate, task_manager
from harness_ext.models import TokenScores, UnlearnHFLM
from harness_ext.reference import build_reference, describe_entry
from tests.conftest import ANCHORS, TOFU_DIR, requires
from tests.reference_fixtures import DEFAULT_SETTINGS, evaluate_into, forget_samples, write_samples
from unlearn_tasks import prompts
from unlearn_tasks.tofu.documents import tofu_membership_documents
from unlearn_tasks.tofu.reference import FORMAT, RetainReferenceError, load_mia_reference

MIA_TASKS = ("unlearn_tofu_mia_forget01", "unlearn_tofu_mia_forget05", "unlearn_tofu_mia_forget10")
TASK = "unlearn_tofu_mia_forget01"
pytestmark = requires(TOFU_DIR, "TOFU data")


def raw_rows(config: str) -> list[dict]:
    lines = (TOFU_DIR / f"{config}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def pairwise_auc(members: list[float], nonmembers: list[float]) -> float:
    """P(member score > non-member score) + P(tie) / 2, by counting every pair."""
    wins = sum((m > n) + 0.5 * (m == n) for m in members for n in nonmembers)
    return wins / (len(members) * len(nonmembers))


def lowest_mean(values: list[float], k: float = 0.4) -> float:
    count = max(1, int(len(values) * k))
    return sum(sorted(values)[:count]) / count


class ScriptedScorer(LM):
    """Answers loglikelihood requests with TokenScores from a {(split, index): (logprobs, means, variances)} table."""

    def __init__(self, table: dict):
        super().__init__()
        self.table = table

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        responses = []
        for request in requests:
            logprobs, means, variances = self.table[(request.doc["split"], request.doc["index"])]
            responses.append(TokenScores(logprobs, [False] * len(logprobs), means, variances))
        return responses

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError

    def generate_until(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("the MIA tasks do not generate")


def run(lm, tasks, limit, metadata) -> dict:
    return lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=task_manager(metadata), limit=limit,
                                   bootstrap_iters=0, log_samples=True)


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(TOFU_DIR.parent))


# Eight documents: forget 0, holdout 0, forget 1, ... (the loader interleaves). Five tokens each.
SCRIPTED = {
    ("forget", 0): ([-1.0, -1.0, -1.0, -1.0, -1.0], [-2.0] * 5, [1.0] * 5),
    ("forget", 1): ([-0.5, -0.5, -1.5, -2.5, -5.0], [-1.0] * 5, [4.0] * 5),
    ("forget", 2): ([-3.0, -3.0, -3.0, -3.0, -3.0], [-3.0] * 5, [1.0] * 5),
    ("forget", 3): ([-2.0, -2.0, -2.0, -6.0, -8.0], [-4.0] * 5, [9.0] * 5),
    ("holdout", 0): ([-1.5, -1.5, -1.5, -1.5, -1.5], [-1.0] * 5, [1.0] * 5),
    ("holdout", 1): ([-0.1, -0.1, -0.1, -6.0, -6.2], [-1.0] * 5, [1.0] * 5),
    ("holdout", 2): ([-3.5, -3.5, -3.5, -3.5, -3.5], [-3.0] * 5, [4.0] * 5),
    ("holdout", 3): ([-5.0, -5.0, -5.0, -5.0, -5.0], [-6.0] * 5, [1.0] * 5),
}


def expected_aucs() -> dict[str, float]:
    answers = {("forget", i): row["answer"] for i, row in enumerate(raw_rows("forget01")[:4])}
    answers |= {("holdout", i): row["answer"] for i, row in enumerate(raw_rows("holdout01")[:4])}
    attacks = {
        "auc_loss": lambda lp, mu, var, text: sum(lp) / len(lp),
        "auc_zlib": lambda lp, mu, var, text: sum(lp) / len(lp) / len(zlib.compress(text.encode())),
        "auc_mink": lambda lp, mu, var, text: lowest_mean(lp),
        "auc_minkpp": lambda lp, mu, var, text: lowest_mean([(x - m) / math.sqrt(v) for x, m, v in zip(lp, mu, var)]),
    }
    aucs = {}
    for key, attack in attacks.items():
        scores = {doc: attack(*SCRIPTED[doc], answers[doc]) for doc in SCRIPTED}
        aucs[key] = pairwise_auc([s for (split, _), s in scores.items() if split == "forget"],
                                 [s for (split, _), s in scores.items() if split == "holdout"])
    return aucs


def test_every_mia_yaml_and_unlearn_all_group_is_indexed():
    index = task_manager().task_index
    for name in MIA_TASKS:
        assert index[name].kind.name == "PY_TASK", f"{name} did not index"
    for split in ("01", "05", "10"):
        entry = index[f"unlearn_all_forget{split}"]
        assert entry.kind.name == "GROUP"
        members = entry.cfg["task"]
        assert members == [f"unlearn_tofu_forget{split}", "unlearn_tofu_utility", f"unlearn_fluency_forget{split}",
                           "unlearn_fluency_retain", f"unlearn_tofu_mia_forget{split}", "unlearn_mmlu", "unlearn_probes"]
        assert [index[name].kind.name for name in members] == ["PY_TASK"] * 5 + ["GROUP", "GROUP"]


def test_documents_alternate_members_and_nonmembers(local_data):
    documents = list(tofu_membership_documents("forget01", "holdout01")["test"])
    forget, holdout = raw_rows("forget01"), raw_rows("holdout01")
    assert len(documents) == len(forget) + len(holdout) == 80
    assert [doc["question"] for doc in documents[0::2]] == [row["question"] for row in forget]
    assert [doc["answer"] for doc in documents[1::2]] == [row["answer"] for row in holdout]
    assert [doc["member"] for doc in documents[:4]] == [True, False, True, False]
    assert [(doc["split"], doc["index"]) for doc in documents[:3]] == [("forget", 0), ("holdout", 0), ("forget", 1)]


def test_scripted_scores_give_the_hand_counted_aucs(local_data):
    results = run(ScriptedScorer(SCRIPTED), [TASK], 8, {"token_details": True})["results"][TASK]
    # LOSS (mean log-prob): members -1, -2, -3, -4; non-members -1.5, -2.5, -3.5, -5: 4+3+2+1 = 10 of 16 pairs.
    assert results["auc_loss,none"] == 10 / 16
    # Min-K% (2 lowest of 5): members -1, -3.75, -3, -7; non-members -1.5, -6.1, -3.5, -5: 4+2+3+0 = 9 of 16.
    assert results["auc_mink,none"] == 9 / 16
    expected = expected_aucs()
    assert (expected["auc_loss"], expected["auc_mink"]) == (10 / 16, 9 / 16)  # the table above, recounted
    for key in ("auc_zlib", "auc_minkpp"):
        assert results[f"{key},none"] == pytest.approx(expected[key], abs=1e-12)
    assert len({results[f"{key},none"] for key in expected}) >= 3  # the attacks rank differently
    assert math.isnan(results["privleak,none"])


def test_privleak_without_reference_is_nan_with_one_warning(local_data, caplog):
    with caplog.at_level(logging.WARNING, logger="unlearn_tasks.mia.aggregations"):
        results = run(ScriptedScorer(SCRIPTED), [TASK], 8, {"token_details": True})["results"][TASK]
    assert math.isnan(results["privleak,none"])
    warnings = [record for record in caplog.records if "privleak is NaN" in record.getMessage()]
    assert len(warnings) == 1 and "retain_ref" in warnings[0].getMessage()


def write_reference(path: Path, auc_mink: float, members: int = 40, nonmembers: int = 40) -> Path:
    entry = {"settings": DEFAULT_SETTINGS, "auc_loss": 0.5, "auc_zlib": 0.5, "auc_mink": auc_mink, "auc_minkpp": None,
             "members": members, "nonmembers": nonmembers}
    path.write_text(json.dumps({"format": FORMAT, "tasks": {TASK: entry}}))
    return path


def test_privleak_compares_min_k_auc_with_the_retain_models(local_data, tmp_path):
    reference = write_reference(tmp_path / "ref.json", auc_mink=0.25)
    results = run(ScriptedScorer(SCRIPTED), [TASK], 8, {"token_details": True, "retain_ref": str(reference)})["results"][TASK]
    # MUSE AUCs (1 - ours): 1 - 9/16 = 0.4375 vs 0.75: (0.4375 - 0.75) / 0.75 * 100 = -41.666...
    assert results["privleak,none"] == pytest.approx((0.4375 - 0.75) / 0.75 * 100, abs=1e-12)
    assert results["privleak,none"] < 0  # the evaluated model tells members apart better than the retain model


def test_a_reference_for_other_documents_is_refused(local_data, tmp_path):
    reference = write_reference(tmp_path / "ref.json", auc_mink=0.5, members=3, nonmembers=3)
    with pytest.raises(RetainReferenceError, match="3 members and 3 non-members, the task has 40 and 40"):
        run(ScriptedScorer(SCRIPTED), [TASK], 8, {"token_details": True, "retain_ref": str(reference)})
    with pytest.raises(RetainReferenceError, match="no entry for unlearn_tofu_mia_forget05"):
        load_mia_reference(reference, "unlearn_tofu_mia_forget05", 200, 200, {})


def tiny_model(folder: Path, vocab_size: int):
    rows = raw_rows("forget01") + raw_rows("holdout01")
    model, tokenizer = build_tiny_model(tofu_texts(rows), out_dir=folder, vocab_size=vocab_size)
    return folder, model, tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """With 2048 tokens no answer of forget01/holdout01 has a whitespace-only token."""
    return tiny_model(tmp_path_factory.mktemp("tiny_mia"), 2048)


def direct_answer_details(model, tokenizer, question: str, answer: str):
    """Per-token log-probs of the answer after the prompt, and the next-token log p mean/variance."""
    context = prompts.context(question)
    ids = tokenizer(context + prompts.continuation(answer)).input_ids
    start = len(tokenizer(context).input_ids)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    rows = logprobs[start - 1 : len(ids) - 1]
    chosen = [float(rows[i, token]) for i, token in enumerate(ids[start:])]
    means = (rows.exp() * rows).sum(-1)
    variances = (rows.exp() * rows.square()).sum(-1) - means.square()
    return chosen, means.tolist(), variances.tolist()


def test_real_tiny_model_scores_match_a_direct_computation(local_data, tiny):
    path, model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    output = evaluate(lm, [TASK], limit=6, metadata={"tokenizer": str(path)}, log_samples=True, bootstrap_iters=0)
    samples = output["samples"][TASK]
    assert [sample["doc"]["member"] for sample in samples] == [True, False] * 3
    for sample in samples:
        logprobs, means, variances = direct_answer_details(model, tokenizer, sample["doc"]["question"], sample["doc"]["answer"])
        assert sample["auc_loss"][1] == pytest.approx(sum(logprobs) / len(logprobs), abs=1e-5)
        assert sample["auc_mink"][1] == pytest.approx(lowest_mean(logprobs), abs=1e-5)
        z_scores = [(x - m) / math.sqrt(v) for x, m, v in zip(logprobs, means, variances)]
        assert sample["auc_minkpp"][1] == pytest.approx(lowest_mean(z_scores), abs=1e-4)
    members = [s["auc_loss"][1] for s in samples if s["doc"]["member"]]
    nonmembers = [s["auc_loss"][1] for s in samples if not s["doc"]["member"]]
    assert output["results"][TASK]["auc_loss,none"] == pytest.approx(pairwise_auc(members, nonmembers))


def open_unlearning_logprobs(model, tokenizer, question: str, answer: str) -> list[float]:
    """open-unlearning's MIA tokens: ids of prompt + answer (+ EOS), labels after the prompt's ids, EOS unscored."""
    prompt = f"Question: {question}\nAnswer: "
    ids = tokenizer(prompt + answer).input_ids + [tokenizer.eos_token_id]
    start = len(tokenizer(prompt).input_ids)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return [float(logprobs[position - 1, ids[position]]) for position in range(start, len(ids) - 1)]


def test_open_unlearning_convention_scores_the_tokens_open_unlearning_scores(local_data, tiny):
    path, model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    output = evaluate(lm, [TASK], limit=4, metadata={"tokenizer": str(path), "convention": "open-unlearning"},
                      log_samples=True, bootstrap_iters=0)
    for sample in output["samples"][TASK]:
        logprobs = open_unlearning_logprobs(model, tokenizer, sample["doc"]["question"], sample["doc"]["answer"])
        assert sample["auc_loss"][1] == pytest.approx(sum(logprobs) / len(logprobs), abs=1e-5)
        assert sample["auc_mink"][1] == pytest.approx(lowest_mean(logprobs), abs=1e-5)


def test_fallback_path_gives_the_same_aucs_and_nan_minkpp(local_data, tiny, caplog):
    path, model, tokenizer = tiny
    detailed = evaluate(UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu"), [TASK],
                        limit=6, metadata={"tokenizer": str(path)}, bootstrap_iters=0)["results"][TASK]
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    with caplog.at_level(logging.WARNING, logger="unlearn_tasks.mia.aggregations"):
        fallback = run(plain, [TASK], 6, {"tokenizer": str(path)})["results"][TASK]
    for key in ("auc_loss", "auc_zlib", "auc_mink"):
        assert fallback[f"{key},none"] == pytest.approx(detailed[f"{key},none"], abs=1e-9)
    assert not math.isnan(detailed["auc_minkpp,none"])
    assert math.isnan(fallback["auc_minkpp,none"])
    assert sum("auc_minkpp is NaN" in record.getMessage() for record in caplog.records) == 1


def test_fallback_path_scores_answers_with_whitespace_only_tokens(local_data, tmp_path):
    path, model, tokenizer = tiny_model(tmp_path, 512)  # answers 0 and 2 have " " tokens with this vocabulary
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    results = run(plain, [TASK], 6, {"tokenizer": str(path)})["results"][TASK]
    assert 0.0 <= results["auc_loss,none"] <= 1.0


def test_a_model_is_its_own_retain_model(local_data, tiny, tmp_path):
    """`unlearn-bench reference` stores the full run's AUCs; the same model against them has privleak 0."""
    path, model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    folder = evaluate_into(tmp_path, lm, path, [TASK], metadata={"tokenizer": str(path)})
    first = json.loads(next(folder.glob("results_*.json")).read_text())
    payload = build_reference(tmp_path, tmp_path / "ref.json")
    entry = payload["tasks"][TASK]
    assert (entry["members"], entry["nonmembers"]) == (40, 40)
    assert entry["settings"] == DEFAULT_SETTINGS and entry["provenance"]["model"] == str(path)
    for key in ("auc_loss", "auc_zlib", "auc_mink", "auc_minkpp"):
        assert entry[key] == pytest.approx(first["results"][TASK][f"{key},none"], abs=1e-12)
    second = evaluate(lm, [TASK], metadata={"tokenizer": str(path), "retain_ref": str(tmp_path / "ref.json")},
                      bootstrap_iters=0)
    assert second["results"][TASK]["privleak,none"] == pytest.approx(0.0, abs=1e-9)


def test_one_reference_file_holds_truth_ratios_and_aucs(local_data, tiny, tmp_path):
    path, model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    folder = evaluate_into(tmp_path, lm, path, [TASK], metadata={"tokenizer": str(path)})
    write_samples(folder, "unlearn_tofu_forget01", forget_samples(3))
    payload = build_reference(tmp_path, tmp_path / "both.json")
    assert set(payload["tasks"]) == {TASK, "unlearn_tofu_forget01"}
    assert payload["tasks"]["unlearn_tofu_forget01"] == build_reference(tmp_path, tmp_path / "tr.json")["tasks"]["unlearn_tofu_forget01"]
    assert describe_entry(payload["tasks"]["unlearn_tofu_forget01"]) == "3 truth ratios (ckpt/retain, convention default)"
    assert describe_entry(payload["tasks"][TASK]).startswith("MIA AUCs on 40 members / 40 non-members (auc_mink=")
    assert json.loads((tmp_path / "both.json").read_text()) == payload


def test_reference_from_a_limited_run_is_refused_when_loaded(local_data, tiny, tmp_path):
    path, model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    evaluate_into(tmp_path, lm, path, [TASK], limit=6, metadata={"tokenizer": str(path)})
    assert build_reference(tmp_path, tmp_path / "ref.json")["tasks"][TASK]["provenance"]["limit"] == 6
    with pytest.raises(RetainReferenceError, match="--limit"):
        load_mia_reference(tmp_path / "ref.json", TASK, 40, 40, DEFAULT_SETTINGS)


@pytest.mark.slow
@requires(ANCHORS, "open-unlearning anchor")
def test_smollm2_mia_on_forget01_is_near_chance_and_matches_open_unlearning(local_data, smollm2, tmp_path):
    lm = UnlearnHFLM(pretrained=str(smollm2), batch_size=8, device="cpu", dtype="float32")
    default = evaluate(lm, [TASK], bootstrap_iters=0)["results"][TASK]
    for key in ("auc_loss", "auc_zlib", "auc_mink", "auc_minkpp"):
        assert 0.3 <= default[f"{key},none"] <= 0.7, (key, default)  # SmolLM2 never saw TOFU
    # open-unlearning's convention against its own evaluator's output on the same checkpoint.
    anchor = json.loads((ANCHORS / "TOFU_EVAL.json").read_text())["mia_min_k"]
    default_ref = tmp_path / "ou_default.json"
    default_ref.write_text(json.dumps({"mia_min_k": {"agg_value": 0.5}}))  # open-unlearning's fallback ref_value
    output = evaluate(lm, [TASK], metadata={"convention": "open-unlearning", "retain_ref": str(default_ref)},
                      log_samples=True, bootstrap_iters=0)
    for sample in output["samples"][TASK]:
        doc = sample["doc"]
        theirs = anchor["forget" if doc["member"] else "holdout"]["value_by_index"][str(doc["index"])]["score"]
        assert -sample["auc_mink"][1] == pytest.approx(theirs, rel=1e-4)  # theirs is oriented as a loss
    results = output["results"][TASK]
    assert results["auc_mink,none"] == pytest.approx(anchor["auc"], abs=1 / 1600)  # one pair of 1600 may flip
    assert results["privleak,none"] == pytest.approx(4.375, abs=0.07)
    print({key: round(default[f"{key},none"], 4) for key in ("auc_loss", "auc_zlib", "auc_mink", "auc_minkpp")},
          {key: round(results[f"{key},none"], 6) for key in ("auc_mink", "privleak")})


def test_unlearn_all_forget01_runs_every_task_and_keeps_the_group_scores(local_data, tiny):
    from unlearn_tasks.mmlu.data import MMLU_SUBJECTS

    path, model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")
    output = evaluate(lm, ["unlearn_all_forget01"], limit=2, metadata={"tokenizer": str(path)}, bootstrap_iters=0)
    own = {"unlearn_tofu_forget01", "unlearn_tofu_utility", "unlearn_fluency_forget01", "unlearn_fluency_retain", TASK}
    mmlu = {f"unlearn_mmlu_{subject}" for subject in MMLU_SUBJECTS}
    probes = set(output["group_subtasks"]["unlearn_probes"])
    assert len(probes) == 9 and set(output["group_subtasks"]["unlearn_mmlu"]) == mmlu
    assert set(output["results"]) == own | mmlu | probes | {"unlearn_all_forget01", "unlearn_mmlu", "unlearn_probes"}
    for group in ("unlearn_mmlu", "unlearn_probes"):
        assert 0.0 <= output["groups"][group]["acc,none"] <= 1.0
    for key in ("token_entropy", "rep3", "gen_len"):
        assert f"{key},none" in output["results"]["unlearn_fluency_retain"]
    for key in ("auc_loss", "auc_zlib", "auc_mink", "auc_minkpp"):
        assert 0.0 <= output["results"][TASK][f"{key},none"] <= 1.0
    # Fluency reuses the TOFU tasks' answers: forget 2 answers + 2 paraphrase answers, retain 2 answers, triviaqa 2.
    assert lm.stats["generations"] == lm.stats["generation_requests"] - 4 == 8
