"""The demo's last phase: the metric-robustness study on its own checkpoints (docs/robustness.md, "The study").

The family: the target, the retain model, every method plain and controlled, and a mixing grid
(each plain model mixed with the target at the grid's α; none in the quick preset, to stay within its
time). Every member is scored clean and under
each attack on the first ``limit`` documents of each task; the evaluations are cached in
``work/robustness`` so an interrupted demo resumes the study where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness_ext.demo.presets import FORGET, RETAIN
from harness_ext.demo.steps import Ledger, Source, Step


@dataclass(frozen=True)
class StudyPreset:
    attacks: tuple[str, ...]
    mix_grid: tuple[float, ...]
    limit: int


PRESETS = {
    "full": StudyPreset(("noise", "jailbreak", "paraphrase", "relearn", "quantize4", "probe_lens"), (0.5,), 8),
    "quick": StudyPreset(("noise", "jailbreak", "paraphrase", "relearn", "quantize4", "probe_lens"), (), 4),
}


def study_family(models: dict, target: Path, grid: tuple[float, ...]):
    """The demo's checkpoints (``models``: name → Source) and each plain unlearned one mixed with the target."""
    from harness_ext.robustness.family import Member

    members = [Member(name, Path(source.location)) for name, source in models.items()]
    mixtures = [Member(f"{member.name}@{alpha:g}", member.checkpoint, target, alpha)
                for member in members if member.name.endswith("-none") for alpha in grid]
    return members + mixtures


def study_config(config, preset: StudyPreset):
    """The study's settings: relearning at the demo's unlearning rate for one epoch of the forget set."""
    import torch

    from harness_ext.robustness import AttackSettings, ScoringSettings, StudyConfig

    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return StudyConfig(
        attacks=preset.attacks,
        attack_settings=AttackSettings(forget=FORGET, retain=RETAIN, relearn_lr=config.unlearn["lr"], seed=config.seed),
        scoring=ScoringSettings(forget=FORGET, limit=preset.limit, batch_size=config.eval_batch_size, device=device))


def robustness(ledger: Ledger, config, out: Path, work: Path, models: dict[str, Source], data: Source) -> None:
    """``robustness.md``/``.csv``/``.json``/``.png`` in ``out`` for the demo's ``models``, on the TOFU ``data``."""
    from dataclasses import asdict

    from harness_ext.robustness import run_study

    preset = PRESETS["quick" if config.preset == "quick" else "full"]
    family = study_family(models, Path(models["target"].location), preset.mix_grid)
    study = study_config(config, preset)
    step = Step("robustness", f"robustness study: {len(family)} models × {len(preset.attacks)} attacks",
                out / "robustness.md",
                {"models": {name: source.digest for name, source in models.items()}, "preset": asdict(preset),
                 "study": asdict(study), "data": data.digest},
                stamp_dir=work)

    def build(_) -> None:
        result = run_study(family, study, out, cache=work / "robustness", log=ledger.log)
        ledger.log(f"[demo] {result['sentence']}")

    ledger.ensure(step, build)
