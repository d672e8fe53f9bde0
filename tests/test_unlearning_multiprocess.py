"""``accelerate launch --num_processes 2`` unlearning on CPU (gloo, DDP) equals one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts

ANSWER = "The answer is kept secret by the author."  # one answer: every sequence has the same answer tokens


def write_rows(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return f"file:{path}"


def unlearn_command(model: Path, forget: str, retain: str, out: Path, batch_size: int) -> list[str]:
    return ["-m", "harness_ext.cli", "unlearn", "--model", str(model), "--method", "ga",
            "--forget", forget, "--retain", retain, "--out", str(out), "--batch-size", str(batch_size),
            "--max-steps", "3", "--lr", "1e-3", "--lr-schedule", "linear", "--warmup-epochs", "0.5"]


def run(arguments: list[str], cwd: Path, **env) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **env)
    done = subprocess.run(arguments, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_process_unlearning_equals_one_process_with_the_same_global_batch(tmp_path):
    questions = [f"What is fact number {index} about the author?" for index in range(16)]
    rows = [{"question": question, "answer": ANSWER} for question in questions]
    model, tokenizer = build_tiny_model(tofu_texts(rows), out_dir=tmp_path / "model", hidden_size=32)
    forget, retain = write_rows(tmp_path / "forget.jsonl", rows[:8]), write_rows(tmp_path / "retain.jsonl", rows[8:])
    root = Path(__file__).resolve().parents[1]
    run([sys.executable, *unlearn_command(tmp_path / "model", forget, retain, tmp_path / "one", 4)], root)
    # `--cpu` alone starts one process (multi-CPU there means mpirun); torchrun's launcher (`--multi_gpu`)
    # with ACCELERATE_USE_CPU=1 gives Accelerate's MULTI_CPU over gloo
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29581"]
    run([*launch, *unlearn_command(tmp_path / "model", forget, retain, tmp_path / "two", 2)], root, ACCELERATE_USE_CPU="1")
    start = model.state_dict()
    one, two = (AutoModelForCausalLM.from_pretrained(tmp_path / name).state_dict() for name in ("one", "two"))
    moved = max((one[name] - start[name]).abs().max().item() for name in start)
    assert moved > 1e-4  # the runs trained
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6)
    assert json.loads((tmp_path / "two" / "control.json").read_text())["steps"] == 3
