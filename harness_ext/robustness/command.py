"""``unlearn-bench robustness MODELS... --attacks ... --out DIR``: the study from the command line."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from harness_ext.robustness.attacks import ATTACKS, DEFAULT_ATTACKS, AttackSettings
from harness_ext.robustness.family import DEMO_MODELS


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _alphas(text: str) -> list[float]:
    try:
        return [float(value) for value in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--mix-grid takes comma-separated numbers in [0, 1], got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = AttackSettings()
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="checkpoint folders, or demo run folders (every checkpoint in <run>/work/models)")
    parser.add_argument("--out", type=Path, required=True, help="where robustness.md/.csv/.json/.png and the cache go")
    parser.add_argument("--attacks", type=_names, default=list(DEFAULT_ATTACKS),
                        help=f"comma-separated (default {','.join(DEFAULT_ATTACKS)}; known: {','.join(ATTACKS)})")
    parser.add_argument("--mix-grid", type=_alphas, default=[],
                        help="α values: add each unlearned model mixed with --target at each α, e.g. 0.25,0.5,0.75")
    parser.add_argument("--target", help="the target model mixtures are made with (default: a demo run's target)")
    parser.add_argument("--data", help="a folder in the $UNLEARN_DATA_DIR layout, or 'hub' (default: "
                                       "$UNLEARN_DATA_DIR, else a demo run's data, else the hub)")
    parser.add_argument("--forget", default=defaults.forget, help="TOFU forget split (default forget10)")
    parser.add_argument("--limit", type=int, help="score only the first N documents of the forget and retain tasks (default: all; MIA: all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", help="default: cuda when visible, else cpu")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of noise, relearning, trained probes")
    parser.add_argument("--noise-rate", type=float, default=defaults.noise_rate)
    parser.add_argument("--jailbreak-template", default=defaults.jailbreak_template)
    parser.add_argument("--relearn-steps", type=int, help="relearning steps (default: one epoch of the forget set)")
    parser.add_argument("--relearn-lr", type=float, default=defaults.relearn_lr)
    parser.add_argument("--probe-layer", type=int, default=defaults.probe_layer,
                        help="the layer probes read (1..L or -L..-1; default -2)")
    parser.add_argument("--probe-steps", type=int, default=defaults.probe_steps, help="probe_trained head steps")


def data_folder(option: str | None, models: list[str]) -> str | None:
    """The ``$UNLEARN_DATA_DIR`` of the study (None: the hub)."""
    if option == "hub":
        return None
    if option:
        return str(Path(option).expanduser().resolve())
    if os.environ.get("UNLEARN_DATA_DIR"):
        return os.environ["UNLEARN_DATA_DIR"]
    for model in models:
        candidate = Path(model).expanduser().resolve() / DEMO_MODELS.parent / "data"
        if (candidate / "tofu").is_dir():
            return str(candidate)
    return None


@contextlib.contextmanager
def data_environment(folder: str | None):
    saved = os.environ.get("UNLEARN_DATA_DIR")
    os.environ.pop("UNLEARN_DATA_DIR", None)
    if folder is not None:
        os.environ["UNLEARN_DATA_DIR"] = folder
    try:
        yield
    finally:
        os.environ.pop("UNLEARN_DATA_DIR", None)
        if saved is not None:
            os.environ["UNLEARN_DATA_DIR"] = saved


def run(args: argparse.Namespace) -> int:
    import torch

    from harness_ext.robustness import ScoringSettings, StudyConfig, build_family, run_study

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    config = StudyConfig(
        attacks=tuple(args.attacks),
        attack_settings=AttackSettings(forget=args.forget, noise_rate=args.noise_rate,
                                       jailbreak_template=args.jailbreak_template, relearn_steps=args.relearn_steps,
                                       relearn_lr=args.relearn_lr, probe_layer=args.probe_layer,
                                       probe_steps=args.probe_steps, seed=args.seed),
        scoring=ScoringSettings(forget=args.forget, limit=args.limit, batch_size=args.batch_size, device=device))
    members = build_family(args.models, mix_grid=args.mix_grid, target=args.target)
    with data_environment(data_folder(args.data, args.models)):
        study = run_study(members, config, args.out)
    print(f"\n{study['sentence']}\n[robustness] wrote {args.out}/robustness.md, .csv, .json and .png")
    return 0
