"""Tokens per second of one unlearning step per method against one plain fine-tuning step.

Same model (a randomly initialised Llama, hidden 256, 4 layers, 2,048-token BPE vocabulary),
same TOFU forget10 batch, same optimiser step (``train.train_step``). A method's tokens are
every position its step runs through the trained model, padding included (counted by a
forward hook: forget, plus the retain and refusal batches when the method uses them);
reference passes cost time but add no tokens. Ratio = fine-tuning tokens/s ÷ method tokens/s (1.00 = as fast per token).
Targets (issue 3): ga ≤ 1.15×; npo, kl, idkpo ≤ 1.8×.

    UNLEARN_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python benchmarks/unlearn_speed.py
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from harness_ext.demo.tiny_model import build_tiny_model, tofu_texts
from harness_ext.unlearning.batches import unlearn_loader
from harness_ext.unlearning.config import TrainConfig, UnlearnConfig, resolve
from harness_ext.unlearning.logprobs import Reference, answer_ce
from harness_ext.unlearning.losses import METHODS, LossContext
from harness_ext.unlearning.train import make_optimizer, train_step
from unlearn_tasks.tofu.data import load_refusals, load_spec

TARGETS = {"ga": 1.15, "npo": 1.8, "kl": 1.8, "idkpo": 1.8}
MODEL = {"vocab_size": 2048, "hidden_size": 256, "layers": 4, "heads": 4}
ROOT = Path(__file__).resolve().parents[1]


class Runner:
    """One method's step on a fresh copy of the model: the loss, its batch, and its optimiser."""

    def __init__(self, name, base, loss_fn, batch, accelerator, trains=None):
        self.name, self.batch, self.accelerator = name, batch, accelerator
        self.tokens = 0
        self.model = copy.deepcopy(base).train()
        if trains is not None:
            chosen = trains(self.model)
            self.model.requires_grad_(False)
            for parameter in chosen:
                parameter.requires_grad_(True)
        self.loss_fn = loss_fn(self.model)
        self.optimizer = make_optimizer(self.model, TrainConfig(lr=1e-5))
        self.times: list[float] = []

    def count_tokens(self) -> None:
        """One untimed step that counts the positions the trained model runs through (a forward hook)."""

        def count(_module, _args, kwargs):
            self.tokens += kwargs["input_ids"].numel()

        handle = self.model.register_forward_pre_hook(count, with_kwargs=True)
        try:
            self.step(record=False)
        finally:
            handle.remove()

    def step(self, record: bool) -> None:
        start = time.perf_counter()
        train_step(self.accelerator, self.model, self.optimizer, self.loss_fn, self.batch, max_grad_norm=1.0)
        if record:
            self.times.append(time.perf_counter() - start)


def runners(base, tokenizer, accelerator, batch_size: int, seed: int) -> list[Runner]:
    forget, retain = load_spec("tofu:forget10"), load_spec("tofu:retain90")
    step = next(iter(unlearn_loader(tokenizer, forget, retain, batch_size, seed, 512, load_refusals())))
    made = [Runner("finetune", base, lambda model: answer_ce, step.forget, accelerator)]
    for name, method in METHODS.items():
        config = resolve(UnlearnConfig(layer=min(7, MODEL["layers"] - 1)), method.defaults)

        def loss_fn(model, method=method, config=config):
            context = LossContext(config, Reference(model) if method.reference else None)
            return lambda network, batch: method.loss(network, batch, context)

        trains = (lambda model, method=method, config=config: method.trains(model, config)) if method.trains else None
        made.append(Runner(name, base, loss_fn, step, accelerator, trains))
    return made


def measure(made: list[Runner], rounds: int, steps: int) -> None:
    """Interleave the runners (round-robin) so drift in machine load hits them all alike."""
    for runner in made:
        runner.count_tokens()  # also the warm-up
    for _ in range(rounds):
        for runner in made:
            for _ in range(steps):
                runner.step(record=True)


def table(made: list[Runner]) -> list[str]:
    base = made[0]
    base_rate = base.tokens / statistics.median(base.times)
    lines = ["| step | tokens | s/step (median) | tokens/s | ratio vs fine-tune | target |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for runner in made:
        seconds = statistics.median(runner.times)
        rate = runner.tokens / seconds
        ratio = base_rate / rate
        target = TARGETS.get(runner.name)
        verdict = "" if target is None else f"≤ {target}× {'✓' if ratio <= target else '✗'}"
        lines.append(f"| {runner.name} | {runner.tokens} | {seconds:.4f} | {rate:,.0f} | {ratio:.2f}× | {verdict} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per method per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "results" / "unlearn_speed.md"))
    args = parser.parse_args(argv)
    os.environ.setdefault("UNLEARN_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    torch.manual_seed(args.seed)
    model, tokenizer = build_tiny_model(tofu_texts(load_spec("tofu:forget10")), seed=args.seed, **MODEL)
    accelerator = Accelerator()
    model.to(accelerator.device)
    made = runners(model, tokenizer, accelerator, args.batch_size, args.seed)
    measure(made, args.rounds, args.steps)
    lines = table(made)
    print("\n".join(lines))
    header = [
        "# Unlearning step speed vs fine-tuning",
        "",
        f"`python benchmarks/unlearn_speed.py --batch-size {args.batch_size} --rounds {args.rounds} --steps {args.steps}`"
        f" on {accelerator.device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads,"
        f" torch {torch.__version__}). Model: Llama {MODEL}, TOFU forget10 batch of {args.batch_size}"
        " with its paired retain90 and refusal batches.",
        "Tokens: padded positions the trained model runs through (reference passes add time, not tokens).",
        "Ratio: fine-tuning tokens/s ÷ method tokens/s.",
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(header + lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
