"""Each piece of lm-eval's private API we use (harness_ext.lm_eval_internals) still behaves as we rely on;
``batch_size=auto`` of unlearn_hf's scoring; lm-eval's request cache refused by our planning tasks."""

from __future__ import annotations

import inspect
import math
from types import SimpleNamespace

import lm_eval
import lm_eval.evaluator
import lm_eval.tasks
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.config.evaluate_config import EvaluatorConfig
from lm_eval.models.huggingface import HFLM

from harness_ext import lm_eval_internals
from harness_ext.demo.tiny_model import build_tiny_model
from harness_ext.evaluation import task_manager, tasks_dir
from harness_ext.models import UnlearnHFLM, batch_size
from tests.conftest import TOFU_DIR, requires
from unlearn_tasks.request_cache import RequestCacheError

CONTEXTS = [f"Question: what is item {i}?\nAnswer:" for i in range(10)]


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(CONTEXTS + [" yes", " no"], vocab_size=300, seed=2)


def requests() -> list[Instance]:
    pairs = [(context, answer) for context in CONTEXTS for answer in (" yes", " no maybe")]
    return [Instance("loglikelihood", {}, pair, index) for index, pair in enumerate(pairs)]


# ---- the private API ----------------------------------------------------------------------------------

def test_run_command_parses_the_arguments_eval_adapts():
    args, execute = lm_eval_internals.run_command(
        ["--model", "hf", "--model_args", "pretrained=x", "--tasks", "unlearn_tofu_forget01", "--cache_requests", "true"])
    assert (args.model, args.model_args, args.tasks) == ("hf", {"pretrained": "x"}, ["unlearn_tofu_forget01"])
    for name in ("include_path", "device", "metadata"):
        assert hasattr(args, name), name
    assert args.cache_requests["cache_requests"] is True
    assert callable(execute) and args.func is not None


def test_simple_evaluate_calls_add_env_info_through_the_module():
    assert "add_env_info(results)" in inspect.getsource(lm_eval.evaluator.simple_evaluate)
    original = lm_eval.evaluator.add_env_info
    with lm_eval_internals.without_env_info():
        results = {}
        lm_eval.evaluator.add_env_info(results)
        assert results == {}
    assert lm_eval.evaluator.add_env_info is original


def test_the_run_command_looks_up_task_manager_when_it_runs():
    assert "from lm_eval.tasks import TaskManager" in inspect.getsource(EvaluatorConfig.process_tasks)
    full = lm_eval.tasks.TaskManager
    with lm_eval_internals.index_without_defaults():
        manager = lm_eval.tasks.TaskManager(include_path=[str(tasks_dir())])
        assert "unlearn_tofu_forget01" in manager.all_tasks and "hellaswag" not in manager.all_tasks
    assert lm_eval.tasks.TaskManager is full


def test_lm_evals_batch_size_probe(tiny):
    assert list(inspect.signature(HFLM._detect_batch_size).parameters) == ["self", "requests", "pos"]
    model, tokenizer = tiny
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size="auto", max_batch_size=4, device="cpu")
    assert lm_eval_internals.detect_batch_size(lm, 12) == 4  # nothing runs out of memory here


def test_lm_evals_process_shard_is_what_rank_and_world_size_read(tiny):
    model, tokenizer = tiny
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=2, device="cpu")
    assert (lm.rank, lm.world_size) == (0, 1)
    lm_eval_internals.set_process_shard(lm, 1, 3)
    assert (lm.rank, lm.world_size) == (1, 3)
    source = inspect.getsource(lm_eval.evaluator.evaluate)
    assert "rank=lm.rank," in source and "world_size=lm.world_size," in source  # how requests are split


# ---- batch_size=auto --------------------------------------------------------------------------------

def test_auto_on_cpu_is_max_batch_size(tiny):
    model, tokenizer = tiny
    fixed = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=3, device="cpu")
    auto = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size="auto", max_batch_size=3, device="cpu")
    expected, got = fixed.loglikelihood(requests()), auto.loglikelihood(requests())
    assert [ll for ll, _ in got] == pytest.approx([ll for ll, _ in expected], rel=1e-6)
    inputs = auto.stats["sequences_scored"]
    assert inputs > 8 and auto.stats["forward_batches"] == math.ceil(inputs / 3)  # not the old fixed 8


def test_auto_on_a_gpu_probes_the_longest_input(monkeypatch):
    probed = []
    monkeypatch.setattr(batch_size, "detect_batch_size", lambda lm, length: probed.append(length) or 24)
    gpu = SimpleNamespace(batch_size="auto", max_batch_size=64, device=torch.device("cuda", 0))
    assert batch_size.scoring_batch_size(gpu, [(1,) * 30, (1,) * 7]) == 24 and probed == [30]
    assert batch_size.scoring_batch_size(SimpleNamespace(batch_size="5", device=torch.device("cpu")), []) == 5


# ---- the request cache --------------------------------------------------------------------------------

@requires(TOFU_DIR, "TOFU data")
@pytest.mark.parametrize("task", ["unlearn_tofu_forget01", "unlearn_tofu_mia_forget01"])
def test_the_request_cache_is_refused_before_any_request(tiny, monkeypatch, task):
    monkeypatch.setenv("UNLEARN_DATA_DIR", str(TOFU_DIR.parent))
    model, tokenizer = tiny
    lm = UnlearnHFLM(pretrained=model, tokenizer=tokenizer, batch_size=4, device="cpu")
    with pytest.raises(RequestCacheError, match=f"{task} cannot use lm-eval's request cache"):
        lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=task_manager(), limit=2, cache_requests=True)
    assert lm.stats["loglikelihood_requests"] == 0


def test_a_zero_batch_size_hands_each_generation_settings_group_whole(tiny, monkeypatch):
    model, tokenizer = tiny
    lm, calls = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=2, device="cpu"), []
    monkeypatch.setattr(HFLM, "_model_generate", lambda self, context, max_length, stop, **kwargs: calls.append(
        len(context)) or torch.cat([context, context[:, -1:]], dim=1))
    settings = [{"until": ["\n"], "max_gen_toks": 1}, {"until": ["."], "max_gen_toks": 1}]
    requests = [Instance("generate_until", {}, (context, settings[i % 2]), i) for i, context in enumerate(CONTEXTS[:7])]
    with lm_eval_internals.whole_generation_groups(lm):
        lm.generate_until(requests)
    assert sorted(calls) == [3, 4] and lm.batch_size_per_gpu == 2
