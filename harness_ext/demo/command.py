"""``unlearn-bench demo``: its options and entry point (docs/demo.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness_ext.demo.presets import METHODS, QUICK_METHODS, demo_config
from harness_ext.demo.run import run_demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("results/demo"),
                        help="output folder (default results/demo); checkpoints and runs go to <out>/work/")
    parser.add_argument("--quick", action="store_true", help="CI size: 20 authors, methods ga and npo (≤ 3 minutes)")
    parser.add_argument("--fresh", action="store_true", help="redo every step, even those already up to date")
    parser.add_argument("--model", help="a real base model (HF id or folder) instead of the tiny one")
    parser.add_argument("--data", help="synthetic (default without --model), hub, or a folder in the "
                                       "$UNLEARN_DATA_DIR layout (default with --model: $UNLEARN_DATA_DIR, else hub)")
    parser.add_argument("--device", help="evaluation device, e.g. cuda (default: cuda when visible, else cpu)")
    parser.add_argument("--methods", type=lambda text: [name for name in text.split(",") if name],
                        help=f"comma-separated unlearning methods (default: {','.join(METHODS)}; --quick: "
                             f"{','.join(QUICK_METHODS)})")
    parser.add_argument("--authors", type=int, help="synthetic authors (default 40; --quick: 20)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: 1 for the tiny model)")
    for stage in ("finetune", "unlearn"):
        parser.add_argument(f"--{stage}-lr", type=float, help=f"{stage} learning rate (default: the preset's)")
        parser.add_argument(f"--{stage}-epochs", type=int, help=f"{stage} epochs (default: the preset's)")


def run(args: argparse.Namespace) -> int:
    config = demo_config(quick=args.quick, model=args.model, data=args.data, methods=args.methods,
                         authors=args.authors, device=args.device, threads=args.threads,
                         finetune_lr=args.finetune_lr, finetune_epochs=args.finetune_epochs,
                         unlearn_lr=args.unlearn_lr, unlearn_epochs=args.unlearn_epochs)
    try:
        run_demo(config, args.out, fresh=args.fresh)
    except KeyboardInterrupt:
        print("\n[demo] interrupted: finished steps are kept; run the same command again to resume", file=sys.stderr)
        return 130
    print(f"\n[demo] wrote {args.out / 'leaderboard.md'}, leaderboard.csv, leaderboard.html, plots and timings.json")
    return 0
