"""``accelerate launch --num_processes 2`` unlearning on CPU (gloo, DDP) equals one process with the same global batch;
engines that shard the weights (FSDP, DeepSpeed ZeRO-3) are refused before training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.utils import DistributedType
from transformers import AutoModelForCausalLM

from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from harness_ext.unlearning import train
from harness_ext.unlearning.commands import add_unlearn_arguments, run_unlearn
from harness_ext.unlearning.config import UnlearnError
from tests.unlearning_fixtures import parsed

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


def engine(kind: DistributedType, zero_stage: int | None = None, processes: int = 1) -> SimpleNamespace:
    """What ``check_launch`` reads of an Accelerator (FSDP and DeepSpeed need GPUs to construct for real)."""
    plugin = SimpleNamespace(zero_stage=zero_stage) if kind == DistributedType.DEEPSPEED else None
    return SimpleNamespace(distributed_type=kind, deepspeed_plugin=plugin, num_processes=processes)


@pytest.mark.parametrize(("accelerator", "name"), [
    (engine(DistributedType.FSDP), "FSDP"), (engine(DistributedType.DEEPSPEED, 3), "DeepSpeed ZeRO-3"),
])
def test_engines_that_shard_the_weights_are_refused(accelerator, name):
    with pytest.raises(UnlearnError, match=f"set up {name}, which shards the weights.*launch with DDP instead"):
        train.check_launch(accelerator)


@pytest.mark.parametrize("accelerator", [
    engine(DistributedType.NO), engine(DistributedType.MULTI_CPU), engine(DistributedType.MULTI_GPU),
    engine(DistributedType.DEEPSPEED, 2),
])
def test_engines_with_full_weights_in_every_process_are_accepted(accelerator):
    train.check_launch(accelerator)


def test_launched_processes_that_did_not_join_one_group_are_refused():
    # `accelerate launch --multi_gpu --num_processes 2` on a machine without GPUs and ACCELERATE_USE_CPU:
    # two processes, each alone (DistributedType.NO)
    with pytest.raises(UnlearnError, match="2 processes were launched .* ACCELERATE_USE_CPU=1"):
        train.check_launch(engine(DistributedType.NO), environ={"WORLD_SIZE": "2"})
    train.check_launch(engine(DistributedType.MULTI_CPU, processes=2), environ={"WORLD_SIZE": "2"})


def test_unlearn_under_fsdp_fails_with_one_line_before_training(tmp_path, monkeypatch, capsys):
    rows = [{"question": f"What is fact number {index} about the author?", "answer": ANSWER} for index in range(4)]
    build_tiny_model(tofu_texts(rows), out_dir=tmp_path / "model", hidden_size=32)
    forget, retain = write_rows(tmp_path / "forget.jsonl", rows[:2]), write_rows(tmp_path / "retain.jsonl", rows[2:])
    monkeypatch.setattr(train, "Accelerator", lambda **settings: engine(DistributedType.FSDP))
    argv = unlearn_command(tmp_path / "model", forget, retain, tmp_path / "out", 2)[3:]
    assert run_unlearn(parsed(add_unlearn_arguments, argv)) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and "set up FSDP" in error.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
