"""Counting tests of the evaluation's work (not timing tests): the suite runs each unique piece of work once.

On a tiny model, the four default tasks run together: the rows the model forwards for scoring and the
prompts it generates from (counted by wrapping the transformers model, below ``unlearn_hf``) equal the
unique (context, continuation) texts and unique questions computed here from the raw TOFU files. A mix
calibration with ``--calibrate-limit 100`` takes at most 8 evaluations (the target once, then bisection).
``unlearn-bench eval`` indexes only our task folder when only our tasks are asked for.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

import harness_ext.evaluation
from harness_ext.evaluation import _only_our_tasks, evaluate, run_eval, task_manager
from harness_ext.models import UnlearnHFLM
from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from tests.conftest import TOFU_DIR, requires

pytestmark = [requires(TOFU_DIR, "TOFU data"), pytest.mark.usefixtures("one_torch_thread")]

SUITE = ("unlearn_tofu_forget10", "unlearn_tofu_utility", "unlearn_fluency_forget10", "unlearn_tofu_mia_forget10")
LIMIT = 4
BATCH_SIZE = 8


def raw_rows(config: str) -> list[dict]:
    lines = (TOFU_DIR / f"{config}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def scored_text(question: str, answer: str) -> str:
    """The text whose tokens one scoring request covers: the TOFU prompt and the answer after one space."""
    return f"Question: {question}\nAnswer: {answer}"


def needed_work(limit: int) -> tuple[dict[str, set], dict[str, set]]:
    """Per task, the scored texts and the generation prompts (questions) its first ``limit`` documents need."""
    forget = raw_rows("forget10_perturbed")[:limit]
    retain = raw_rows("retain_perturbed")[:limit]  # the utility task's documents start with the retain split
    members, nonmembers = raw_rows("forget10"), raw_rows("holdout10")
    interleaved = [row for pair in zip(members, nonmembers) for row in pair][:limit]
    sequences = {
        "forget": {scored_text(row["question"], answer) for row in forget
                   for answer in [row["answer"], row["paraphrased_answer"], *row["perturbed_answer"]]}
        | {scored_text(row["paraphrased_question"], row["answer"]) for row in forget},
        "utility": {scored_text(row["question"], answer) for row in retain
                    for answer in [row["answer"], row["paraphrased_answer"], *row["perturbed_answer"]]},
        "mia": {scored_text(row["question"], row["answer"]) for row in interleaved},
    }
    generations = {
        "forget": {row["question"] for row in forget} | {row["paraphrased_question"] for row in forget},
        "utility": {row["question"] for row in retain},
        "fluency": {row["question"] for row in raw_rows("forget10")[:limit]},
    }
    return sequences, generations


class ModelWork:
    """Counts, below unlearn_hf, the rows the transformers model forwards to score and the rows it generates from.

    Scoring runs the model body (``model.base_model``) outside any call of the whole model: over contexts
    (an empty cache), then over the inputs' suffixes on their contexts' cache (``rows_scored``); a
    generation starts with a call of the whole model that fills an empty KV cache (``use_cache``).
    """

    def __init__(self, model):
        self.scoring_calls = self.contexts_scored = self.rows_scored = self.rows_generated = 0
        self._depth = 0
        model.register_forward_pre_hook(self._enter, with_kwargs=True)
        model.register_forward_hook(self._leave)
        model.base_model.register_forward_pre_hook(self._body, with_kwargs=True)

    @staticmethod
    def _rows(args, kwargs) -> int:
        return (args[0] if args else kwargs["input_ids"]).shape[0]

    def _enter(self, _module, args, kwargs):
        self._depth += 1
        cache = kwargs.get("cache", kwargs.get("past_key_values"))  # transformers 5.24, 5.19
        if kwargs.get("use_cache") and (cache is None or cache.get_seq_length() == 0):
            self.rows_generated += self._rows(args, kwargs)

    def _leave(self, *_):
        self._depth -= 1

    def _body(self, _module, args, kwargs):
        if not self._depth:
            self.scoring_calls += 1
            cache = kwargs.get("cache", kwargs.get("past_key_values"))
            if cache is not None and cache.get_seq_length() > 0:
                self.rows_scored += self._rows(args, kwargs)
            else:
                self.contexts_scored += self._rows(args, kwargs)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    rows = [row for config in ("forget10_perturbed", "retain_perturbed", "holdout10") for row in raw_rows(config)]
    folder = tmp_path_factory.mktemp("tiny")
    build_tiny_model(tofu_texts(rows), folder)
    return folder


def test_the_suite_scores_each_unique_sequence_and_generates_each_unique_prompt_once(tofu_data_dir, tiny_checkpoint):
    lm = UnlearnHFLM(pretrained=str(tiny_checkpoint), batch_size=BATCH_SIZE, device="cpu")
    lm.scorer  # its one-time check that head(body(ids)) is the model's logits runs before counting starts
    work = ModelWork(lm.model)
    evaluate(lm, SUITE, limit=LIMIT, metadata={"tokenizer": str(tiny_checkpoint)}, bootstrap_iters=0)

    sequences, generations = needed_work(LIMIT)
    unique_sequences = set().union(*sequences.values())
    unique_prompts = set().union(*generations.values())
    # The tasks share work: MIA's members are forget documents, fluency generates the forget questions.
    assert sequences["mia"] & sequences["forget"] and generations["fluency"] <= generations["forget"]
    assert len(unique_sequences) < sum(map(len, sequences.values()))
    assert len(unique_prompts) < sum(map(len, generations.values()))

    # Each unique sequence forwarded once, on its context's cache; each context once per batch holding it.
    batches = math.ceil(len(unique_sequences) / BATCH_SIZE)
    contexts = {text[: text.index("\nAnswer:")] for text in unique_sequences}
    assert (work.rows_scored, lm.stats["sequences_scored"]) == (len(unique_sequences), len(unique_sequences))
    assert len(contexts) <= work.contexts_scored <= len(contexts) + batches - 1 < len(unique_sequences)
    assert work.scoring_calls == 2 * lm.stats["forward_batches"] == 2 * batches
    assert (work.rows_generated, lm.stats["generations"]) == (len(unique_prompts), len(unique_prompts))
    # Requests as the tasks ask them: forget 8 per document, retain 7, MIA 1; generations 2 + 1 + 1.
    assert lm.stats["loglikelihood_requests"] == 16 * LIMIT
    assert lm.stats["generation_requests"] == 4 * LIMIT
    # Min-K%++ moments only where a task needs them: the MIA answers' tokens, not the other sequences'.
    mia_tokens = sum(answer_tokens(lm.tokenizer, text) for text in sequences["mia"])
    assert lm.scorer.moment_positions == mia_tokens < lm.scorer.head_positions


def answer_tokens(tokenizer, text: str) -> int:
    """Tokens of the answer (after ``Answer:``) in ``text``, split as lm-eval splits context and continuation."""
    context = text[: text.index("\nAnswer:") + len("\nAnswer:")]
    return len(tokenizer(text)["input_ids"]) - len(tokenizer(context)["input_ids"])


@pytest.fixture
def damaged_copy(memorised_model, tmp_path):
    """The memorised model with Gaussian noise on every weight: an 'unlearned' model that forgot too much."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(memorised_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * 0.5)
    model.save_pretrained(tmp_path / "damaged")
    AutoTokenizer.from_pretrained(memorised_model).save_pretrained(tmp_path / "damaged")
    return tmp_path / "damaged"


def test_a_mix_calibration_with_limit_100_takes_at_most_8_evaluations(memorised_model, damaged_copy, tmp_path, monkeypatch):
    from harness_ext.unlearning.commands import add_mix_arguments, run_mix
    from harness_ext.unlearning.control import TOLERANCE
    from harness_ext.unlearning.metric import Calibration, MetricSpec
    from tests.unlearning_fixtures import load, parsed

    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def counted_evaluate(lm, tasks, **kwargs):
        calls.append((list(tasks), kwargs.get("limit")))
        return evaluate(lm, tasks, **kwargs)

    monkeypatch.setattr(harness_ext.evaluation, "evaluate", counted_evaluate)
    args = parsed(add_mix_arguments, ["--target", str(memorised_model), "--unlearned", str(damaged_copy),
                                      "--out", str(tmp_path / "mixed"), "--tau", "0.9", "--calibrate-limit", "100"])
    assert run_mix(args) == 0
    record = json.loads((tmp_path / "mixed" / "control.json").read_text())
    # The target once, then the bisection: α = 1, then halving to the 1/64 grid (6 more).
    assert record["calibration"]["cached"] is False and record["alpha"] < 1
    assert len(record["trace"]) == 1 + round(math.log2(1 / TOLERANCE)) == 7
    assert calls == [(["unlearn_tofu_utility"], 100)] * (1 + len(record["trace"]))
    assert len(calls) <= 8
    # A second calibration against the same target reuses its cached value: no evaluation of the target.
    target, tokenizer = load(memorised_model)
    assert Calibration(MetricSpec(limit=100)).target_value(target, tokenizer) == (record["calibration"]["target_value"], True)
    assert len(calls) == 8


def test_unlearn_bench_eval_indexes_only_our_tasks_when_only_ours_are_asked_for(tofu_data_dir, tiny_checkpoint,
                                                                               monkeypatch, capsys):
    from lm_eval.tasks import TaskManager

    ours = len(task_manager().all_tasks)  # lm-eval's built-in tasks are ~15,000 more
    indexed = []
    original = TaskManager.__init__

    def recorded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        indexed.append(len(self.all_tasks))

    monkeypatch.setattr(TaskManager, "__init__", recorded)
    argv = ["--model_args", f"pretrained={tiny_checkpoint}", "--tasks", "unlearn_tofu_mia_forget10", "--limit", "2"]
    assert run_eval(argv) == 0
    assert indexed == [ours] and ours < 1000
    assert "auc_loss" in capsys.readouterr().out


def test_evaluate_leaves_out_the_environment_report_when_asked(tofu_data_dir, tiny_checkpoint, monkeypatch):
    import torch.utils.collect_env

    probes = []
    original = torch.utils.collect_env.get_pretty_env_info
    monkeypatch.setattr(torch.utils.collect_env, "get_pretty_env_info", lambda: probes.append(1) or original())
    lm = UnlearnHFLM(pretrained=str(tiny_checkpoint), batch_size=BATCH_SIZE, device="cpu")
    for env_info in (False, True):
        results = evaluate(lm, ["unlearn_tofu_mia_forget10"], limit=2, env_info=env_info, bootstrap_iters=0)
        assert ("pretty_env_info" in results) is env_info and len(probes) == int(env_info)
        assert 0.0 <= results["results"]["unlearn_tofu_mia_forget10"]["auc_loss,none"] <= 1.0


@pytest.mark.parametrize(("tasks", "include_path", "expected"), [
    ("unlearn_tofu_forget10,unlearn_tofu_utility", None, True),
    (["unlearn_all_forget10"], None, True),
    ("unlearn_tofu_forget10,hellaswag", None, False),
    ("unlearn_tofu_forget10", "my_tasks/", False),
    ("unlearn_custom.yaml", None, False),
    (None, None, False),
])
def test_lm_evals_own_tasks_are_indexed_only_when_asked_for(tasks, include_path, expected):
    assert _only_our_tasks(tasks, include_path) is expected


def _benchmark_module(name: str):
    import importlib
    import sys
    from pathlib import Path

    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def test_benchmark_floors_and_needed_tokens_by_hand(tiny_checkpoint):
    from transformers import AutoTokenizer

    eval_floor, eval_speed = _benchmark_module("eval_floor"), _benchmark_module("eval_speed")
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    words = tokenizer.encode(" The author was born")
    eos = tokenizer.eos_token_id
    assert eval_floor.needed_tokens(tokenizer, words + [eos, eos], []) == len(words) + 1
    assert eval_floor.needed_tokens(tokenizer, words, ["was"]) == len(tokenizer.encode(" The author was"))
    assert eval_floor.needed_tokens(tokenizer, words, ["Question:"]) == len(words)
    floors = eval_speed.floors({"scoring": 2.0, "generation": 10.0, "needed_tokens": 30, "row_steps": 120})
    assert floors == {"floor_scoring": 2.0, "floor_generation": 10.0, "floor_needed_generation": 2.5,
                      "floor_s": 4.5, "floor_hf_s": 12.0}
