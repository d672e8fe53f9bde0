"""The vLLM side of the speed benchmark (``eval_speed.py --backend vllm``): the same suite on
``unlearn_vllm``, and vLLM's generation floor (the suite's unique prompts handed to the engine at once).

Needs the engine (``make test-vllm`` builds ``.venv-vllm``); imported only for ``--backend vllm``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import time

from lm_eval.api.registry import register_model

from harness_ext.evaluation import run_eval
from harness_ext.models.vllm import UnlearnVLLM

RECORDING_VLLM = "unlearn_vllm_recorded"
# the CPU build's KV cache (GiB); its default takes a large share of the machine's memory
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


@register_model(RECORDING_VLLM)
class RecordingVLLM(UnlearnVLLM):
    """``unlearn_vllm`` that remembers its newest instance and how long the engine took to start."""

    newest: "RecordingVLLM | None" = None

    def __init__(self, *args, **kwargs):
        self.load_started = time.perf_counter()
        super().__init__(*args, **kwargs)
        self.load_s = time.perf_counter() - self.load_started
        RecordingVLLM.newest = self


def run_vllm_suite(model: str, tasks: list[str], limit: int | None, metadata: dict, max_model_len: int) -> dict:
    """One ``unlearn-bench eval --model vllm`` run of the suite in this process (batch size ``auto``:
    every request of a call goes to the engine at once); engine start and evaluation seconds."""
    model_args = f"pretrained={model},dtype=float32,max_model_len={max_model_len},enforce_eager=True,seed=0"
    argv = ["--model", RECORDING_VLLM, "--model_args", model_args, "--tasks", ",".join(tasks),
            "--batch_size", "auto", "--metadata", json.dumps({"token_details": True, **metadata})]
    if limit is not None:
        argv += ["--limit", str(limit)]
    with contextlib.redirect_stdout(io.StringIO()):
        run_eval(argv)
    ended = time.perf_counter()
    lm = RecordingVLLM.newest
    return {"lm": lm, "load_s": lm.load_s, "eval_s": ended - lm.load_started - lm.load_s,
            "stats": dict(lm.stats)}


def generation_floor(lm: RecordingVLLM, prompts: set[tuple[str, str]]) -> float:
    """Seconds for vLLM to generate every unique (prompt, settings) of the suite, greedy, one call per
    settings group, prompts tokenised as the suite tokenises them."""
    from vllm import SamplingParams

    groups: dict[str, list[str]] = {}
    for context, settings in prompts:
        groups.setdefault(settings, []).append(context)
    started = time.perf_counter()
    for settings, contexts in groups.items():
        kwargs = json.loads(settings)
        params = SamplingParams(temperature=0.0, max_tokens=int(kwargs.get("max_gen_toks", lm.max_gen_toks)),
                                stop=[stop for stop in kwargs.get("until", []) if stop])
        lm.model.generate([{"prompt_token_ids": lm.tok_encode(context)} for context in contexts], params,
                          use_tqdm=False)
    return time.perf_counter() - started


def vllm_round(model_path: str, args, prompts: set) -> dict:
    """The suite on ``unlearn_vllm`` and vLLM's generation floor over the hf suite's unique prompts."""
    suite = run_vllm_suite(model_path, args.tasks, args.limit, args.metadata, args.max_model_len)
    suite["generation_floor_s"] = generation_floor(suite.pop("lm"), prompts)
    return suite


def vllm_table(rounds: list[dict], m: dict) -> list[str]:
    """hf vs vLLM: engine start, evaluation and the generation floor of each (medians)."""
    med = lambda key: statistics.median(r["vllm"][key] for r in rounds)  # noqa: E731
    return [
        "| backend | model load / engine start s | evaluation s | generation floor s |", "| --- | ---: | ---: | ---: |",
        f"| unlearn_hf (transformers) | {m['load_s']:.1f} | {m['eval_s']:.1f} | {m['floor_generation']:.1f}"
        " (greedy `model.generate`) |",
        f"| unlearn_vllm (vLLM) | {med('load_s'):.1f} | {med('eval_s'):.1f} | {med('generation_floor_s'):.1f}"
        " (`LLM.generate`, all prompts at once) |", "",
        f"**vllm/hf evaluation = {med('eval_s') / m['eval_s']:.2f}**; unlearn_vllm counters: {rounds[-1]['vllm']['stats']}.",
    ]
