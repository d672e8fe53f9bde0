"""``unlearn-bench``: evaluate (a drop-in ``lm_eval``), build references, make controlled checkpoints."""

from __future__ import annotations

import argparse
import sys
import traceback

DEBUG_FLAG = "--debug"


def _reference_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="an lm-eval --output_path folder of the retain model, made with --log_samples")
    parser.add_argument("--out", required=True, help="where to write the reference JSON")
    parser.add_argument("--model-name", help="the retain model when the run folder holds several models' samples: "
                                             "its lm-eval model folder name or pretrained=... value")


def _run_reference(args) -> int:
    from harness_ext.reference import build_reference, describe_entry

    payload = build_reference(args.run, args.out, args.model_name)
    for task, entry in payload["tasks"].items():
        print(f"{task}: {describe_entry(entry)} -> {args.out}")
    return 0


def _commands() -> dict:
    """name → (help, add_arguments, run); imported lazily so `--help` stays fast."""
    from harness_ext import leaderboard
    from harness_ext.demo import command as demo
    from harness_ext.demo import synth
    from harness_ext.robustness import command as robustness
    from harness_ext.unlearning import commands

    return {
        "reference": ("per-item truth ratios of a retain model's run, for forget_quality", _reference_parser, _run_reference),
        "finetune": ("fine-tune a model on TOFU-format data (target / retain models)",
                     commands.add_finetune_arguments, commands.run_finetune),
        "unlearn": ("unlearn a forget set, optionally controlled (mixing, early stopping)",
                    commands.add_unlearn_arguments, commands.run_unlearn),
        "mix": ("mix a target and an unlearned model at a given α or calibrated to τ",
                commands.add_mix_arguments, commands.run_mix),
        "synth": ("write a synthetic TOFU-format benchmark", synth.add_arguments, synth.run),
        "leaderboard": ("leaderboard tables and plots from lm-eval runs, compared at matched utility",
                        leaderboard.add_arguments, leaderboard.run),
        "robustness": ("which metrics survive attacks: before/after correlations over a family of models",
                       robustness.add_arguments, robustness.run),
        "demo": ("the whole story offline: synthetic data, tiny model, unlearning, controls, leaderboard",
                 demo.add_arguments, demo.run),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = bool(argv) and argv[0] == DEBUG_FLAG
    argv = argv[1:] if debug else argv
    if argv and argv[0] == "eval":
        from harness_ext.evaluation import run_eval

        return _reporting_errors("eval", run_eval, argv[1:], debug)
    parser = argparse.ArgumentParser(prog="unlearn-bench", description=__doc__)
    parser.add_argument(DEBUG_FLAG, action="store_true",
                        help="also show the traceback of our own errors (give it before the command)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.add_parser("eval", help="lm_eval with our tasks and models (same flags as lm_eval run)", add_help=False)
    for name, (help_text, add_arguments, run) in _commands().items():
        add_arguments(subparsers.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return _reporting_errors(args.command, _commands()[args.command][2], args, debug)


def _reporting_errors(command: str, run, arguments, debug: bool = False) -> int:
    """Run a command. Our own errors (:class:`UnlearnBenchError`: bad input, a reference made under other
    settings, an unwritable output) are one line and exit status 2, with their traceback under ``--debug``;
    any other exception is a bug and propagates with its traceback."""
    from unlearn_tasks.errors import UnlearnBenchError

    try:
        return run(arguments)
    except UnlearnBenchError as error:
        if debug:
            traceback.print_exc()
        print(f"unlearn-bench {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
