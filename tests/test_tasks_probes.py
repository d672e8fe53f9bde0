"""The unlearn_probe_* tasks and the unlearn_probes group, run through lm-eval on the local files.

A scripted model (no network, no weights) prefers a known choice per document, chosen from the raw
data files read here independently of unlearn_tasks.probes.data, so every accuracy has an exact expected value.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import lm_eval
import pytest
from lm_eval.api.model import LM
from lm_eval.tasks import TaskManager

from tests.conftest import SHARED
from unlearn_tasks.datasource import DataError

DATA_DIR = SHARED / "data"
PROBE_DIR = DATA_DIR / "probes"
TASK_FOLDERS = ("mmlu", "probes")
PROBE_TASKS = (
    "unlearn_probe_arc_easy", "unlearn_probe_arc_challenge", "unlearn_probe_piqa",
    "unlearn_probe_hellaswag", "unlearn_probe_winogrande", "unlearn_probe_openbookqa",
    "unlearn_probe_truthfulqa_mc1", "unlearn_probe_triviaqa", "unlearn_probe_lambada",
)
# (task, raw file); the raw gold index is read from the file, never from our loaders.
MULTIPLE_CHOICE_FILES = {
    "unlearn_probe_arc_easy": "gauntlet_arc_easy.jsonl",
    "unlearn_probe_arc_challenge": "gauntlet_arc_challenge.jsonl",
    "unlearn_probe_piqa": "gauntlet_piqa.jsonl",
    "unlearn_probe_openbookqa": "gauntlet_openbook_qa.jsonl",
    "unlearn_probe_winogrande": "gauntlet_winogrande.jsonl",
    "unlearn_probe_hellaswag": "hellaswag_val_sample1000.jsonl",
    "unlearn_probe_truthfulqa_mc1": "TruthfulQA.csv",
}
LIMIT = 6  # even, so "right for the first half" gives exactly 0.5


class ScriptedLM(LM):
    """A deterministic stand-in model: every response comes from functions of the lm-eval request.

    ``score(request) -> (loglikelihood, is_greedy)`` answers loglikelihood requests (``request.idx``
    is the choice index of a multiple-choice document, ``request.doc_id`` its position);
    ``generate(request) -> str`` answers generate_until requests. Every request is kept in ``seen``.
    """

    def __init__(self, score: Callable, generate: Callable | None = None):
        super().__init__()
        self.score, self.generate, self.seen = score, generate, []

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        self.seen.extend(requests)
        return [self.score(request) for request in requests]

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError("no task here asks for rolling log-likelihoods")

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.seen.extend(requests)
        return [self.generate(request) for request in requests]


def task_manager() -> TaskManager:
    """Our installed task folder only (the built-in index would cost seconds and is not needed)."""
    return TaskManager(include_path=str(files("unlearn_tasks")), include_defaults=False)


def evaluate(model: LM, tasks: list[str], limit: int | None) -> dict:
    """lm-eval's own evaluator on our tasks; no bootstrap (lambada's perplexity would bootstrap 100k times)."""
    return lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=task_manager(), limit=limit, bootstrap_iters=0)


def raw_rows(name: str) -> list[dict]:
    path = PROBE_DIR / name
    with open(path, encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            return list(csv.DictReader(handle))
        return [json.loads(line) for line in handle if line.strip()]


def raw_gold(row: dict) -> int:
    """Gold index from a raw row: ``gold`` (gauntlet), ``label`` (HellaSwag), 0 (TruthfulQA CSV: Best Answer first)."""
    if "Best Answer" in row:
        return 0
    return int(row["gold"] if "gold" in row else row["label"])


def raw_choice_count(row: dict) -> int:
    """Number of choices of a raw row; TruthfulQA's are the Best Answer and each non-empty Incorrect Answer."""
    if "Best Answer" in row:
        return 1 + len([answer for answer in row["Incorrect Answers"].split(";") if answer.strip()])
    for key in ("choices", "endings", "context_options"):
        if key in row:
            return len(row[key])
    raise KeyError(f"no choices in {sorted(row)}")


@pytest.fixture
def local_data(monkeypatch):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(DATA_DIR))


@pytest.fixture(scope="module")
def multiple_choice_run():
    """One evaluation of every multiple-choice probe: right on doc_ids below LIMIT/2, the next choice after."""
    rows = {task: raw_rows(name)[:LIMIT] for task, name in MULTIPLE_CHOICE_FILES.items()}

    def score(request):
        row = rows[request.task_name][request.doc_id]
        preferred = raw_gold(row)
        if request.doc_id >= LIMIT // 2:
            preferred = (preferred + 1) % raw_choice_count(row)
        return (0.0, True) if request.idx == preferred else (-10.0, False)

    model = ScriptedLM(score)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNLEARN_DATA_DIR", str(DATA_DIR))
        results = evaluate(model, list(MULTIPLE_CHOICE_FILES), LIMIT)["results"]
    requests = {(request.task_name, request.doc_id, request.idx): request.args for request in model.seen}
    return results, requests, rows


def test_every_yaml_indexes():
    indexed = task_manager().all_tasks
    root = Path(str(files("unlearn_tasks")))
    for folder in TASK_FOLDERS:
        yamls = sorted((root / folder).glob("*.yaml"))
        assert yamls, f"no YAML under {root / folder}"
        for path in yamls:
            lines = path.read_text(encoding="utf-8").splitlines()
            name = next(line.split(":", 1)[1].strip() for line in lines if line.startswith(("task:", "group:")))
            assert name in indexed, f"{path.name} did not index (unparsable YAML?)"
    assert {*PROBE_TASKS, "unlearn_probes"} <= set(indexed)


def test_multiple_choice_probes_score_exactly_half(multiple_choice_run):
    results, requests, rows = multiple_choice_run
    for task in MULTIPLE_CHOICE_FILES:
        assert results[task]["acc,none"] == 0.5, task
    for task in ("unlearn_probe_arc_easy", "unlearn_probe_arc_challenge", "unlearn_probe_piqa",
                 "unlearn_probe_openbookqa", "unlearn_probe_hellaswag"):
        assert results[task]["acc_norm,none"] == 0.5, task
    assert "acc_norm,none" not in results["unlearn_probe_winogrande"]
    assert "acc_norm,none" not in results["unlearn_probe_truthfulqa_mc1"]
    assert len(requests) == sum(raw_choice_count(row) for task_rows in rows.values() for row in task_rows)


def test_prompts_are_lm_eval_prompts(multiple_choice_run):
    _, requests, rows = multiple_choice_run
    arc = rows["unlearn_probe_arc_easy"][0]
    assert requests[("unlearn_probe_arc_easy", 0, 1)] == (arc["query"] + "\nAnswer:", " " + arc["choices"][1])
    piqa = rows["unlearn_probe_piqa"][0]  # gauntlet query "Question: <goal>\n"
    assert requests[("unlearn_probe_piqa", 0, 0)] == (piqa["query"][:-1] + "\nAnswer:", " " + piqa["choices"][0])
    book = rows["unlearn_probe_openbookqa"][2]
    assert requests[("unlearn_probe_openbookqa", 2, 3)] == (book["query"], " " + book["choices"][3])
    wino = rows["unlearn_probe_winogrande"][0]
    assert requests[("unlearn_probe_winogrande", 0, 1)] == (wino["context_options"][1], " " + wino["continuation"])
    # HellaSwag doc 0 of the file: "Pole vault: <ctx_a> A few women", endings unchanged (no brackets).
    swag = rows["unlearn_probe_hellaswag"][0]
    context = f"{swag['activity_label']}: {swag['ctx_a']} A few women"
    assert requests[("unlearn_probe_hellaswag", 0, 3)] == (context, " " + swag["endings"][3])
    truth = rows["unlearn_probe_truthfulqa_mc1"][0]
    context, continuation = requests[("unlearn_probe_truthfulqa_mc1", 0, 0)]
    assert context.startswith("Q: What is human life expectancy in the United States?\nA: Human life")
    assert context.endswith(f"Barcelona, Spain.\n\nQ: {truth['Question']}\nA:")
    assert continuation == " " + truth["Best Answer"]
    assert requests[("unlearn_probe_truthfulqa_mc1", 0, 1)][1] == " You grow watermelons in your stomach"


def test_lambada_accuracy_and_perplexity(local_data):
    rows = raw_rows("gauntlet_lambada_openai.jsonl")[:LIMIT]

    def score(request):
        row = rows[request.doc_id]
        assert request.args == (row["context"], " " + row["continuation"])
        return (-1.0, True) if request.doc_id < LIMIT // 2 else (-3.0, False)

    results = evaluate(ScriptedLM(score), ["unlearn_probe_lambada"], LIMIT)["results"]["unlearn_probe_lambada"]
    assert results["acc,none"] == 0.5
    assert results["perplexity,none"] == pytest.approx(math.exp(2.0))  # exp(-mean(-1, -1, -1, -3, -3, -3))


def test_triviaqa_exact_match_against_aliases(local_data):
    rows = raw_rows("gauntlet_triviaqa_sm_sub.jsonl")[:LIMIT]
    expected_kwargs = {"until": ["\n", ".", ","], "max_gen_toks": 32, "do_sample": False, "temperature": 0.0}

    def generate(request):
        row = rows[request.doc_id]
        question = row["context"].removeprefix("Question: ").removesuffix("\nAnswer:")
        assert request.args == (f"Question: {question}?\nAnswer:", expected_kwargs)
        # Right (an alias, other case, padded, with punctuation) for the first half, wrong after.
        return f"  {row['aliases'][-1].upper()}!" if request.doc_id < LIMIT // 2 else " Paris"

    results = evaluate(ScriptedLM(score=None, generate=generate), ["unlearn_probe_triviaqa"], LIMIT)["results"]
    assert results["unlearn_probe_triviaqa"]["exact_match,remove_whitespace"] == 0.5


def test_group_acc_is_plain_mean_of_members(local_data):
    # Prefers the first choice everywhere (and calls every lambada word greedy); triviaqa answers "no".
    model = ScriptedLM(lambda request: (-float(request.idx), request.idx == 0), generate=lambda request: "no")
    output = evaluate(model, ["unlearn_probes"], 4)
    results = output["results"]
    assert results["unlearn_probe_truthfulqa_mc1"]["acc,none"] == 1.0  # the Best Answer is choice 0
    assert results["unlearn_probe_lambada"]["acc,none"] == 1.0
    assert results["unlearn_probe_triviaqa"]["exact_match,remove_whitespace"] == 0.0
    members = [task for task in PROBE_TASKS if task != "unlearn_probe_triviaqa"]
    expected = sum(results[task]["acc,none"] for task in members) / len(members)
    assert output["groups"]["unlearn_probes"]["acc,none"] == pytest.approx(expected)


def test_missing_probe_file_names_file_and_variable(tmp_path, monkeypatch):
    (tmp_path / "probes").mkdir()
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"gauntlet_arc_easy\.jsonl.*UNLEARN_DATA_DIR"):
        evaluate(ScriptedLM(score=None), ["unlearn_probe_arc_easy"], 2)


def tiny_hf_model(texts: list[str]):
    """lm-eval's own HFLM around a randomly initialised tiny Llama (hidden 32, 2 layers) and its BPE."""
    from lm_eval.models.huggingface import HFLM

    from harness_ext.demo.tiny_model import build_tiny_model

    model, tokenizer = build_tiny_model(texts, hidden_size=32, layers=2, heads=4)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, device="cpu")


def test_tiny_hf_model_runs_every_probe(local_data):
    texts = [row["query"] for row in raw_rows("gauntlet_arc_easy.jsonl")[:200]]
    output = evaluate(tiny_hf_model(texts), ["unlearn_probes"], 5)
    for task in PROBE_TASKS:
        assert output["n-samples"][task]["effective"] == 5
        scores = [value for key, value in output["results"][task].items() if key.split(",")[0] in ("acc", "acc_norm", "exact_match")]
        assert scores and all(0.0 <= score <= 1.0 for score in scores), task
    assert math.isfinite(output["results"]["unlearn_probe_lambada"]["perplexity,none"])
    assert output["results"]["unlearn_probe_lambada"]["perplexity,none"] > 1.0
    assert 0.0 <= output["groups"]["unlearn_probes"]["acc,none"] <= 1.0


@pytest.mark.slow
def test_smollm2_arc_easy_accuracy(local_data, smollm2):
    """The real SmolLM2-135M-Instruct on 200 ARC-Easy questions: well above chance (0.25).

    Measured: acc 0.49, acc_norm 0.46; about 13 min on two contended CPU cores (batch 8).
    """
    from lm_eval.models.huggingface import HFLM

    model = HFLM(pretrained=str(smollm2), batch_size=8, device="cpu")
    results = evaluate(model, ["unlearn_probe_arc_easy"], 200)["results"]["unlearn_probe_arc_easy"]
    assert results["acc,none"] >= 0.35
