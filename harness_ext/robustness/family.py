"""The family of models a robustness study scores: checkpoint folders, demo runs, and mixtures with a target.

A member is a checkpoint folder, or θ(α) = (1 − α)·θ_target + α·θ_checkpoint (``harness_ext.mixing``)
built in memory. Correlations over fewer than four models are meaningless, so a smaller family is
an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unlearn_metrics.robustness import MIN_MODELS
from unlearn_tasks.errors import UnlearnBenchError

DEMO_MODELS = Path("work") / "models"
NOT_IN_FAMILY = ("base",)  # a demo's untrained tiny model: not a member of the family
NOT_MIXED = ("target", "retain")  # a demo's models that are not unlearned


class FamilyError(UnlearnBenchError, ValueError):
    """A model folder that is not a checkpoint, or a family too small for correlations."""


@dataclass(frozen=True)
class Member:
    """One model of the family: ``checkpoint``, or its mixture at ``alpha`` with ``target`` when given."""

    name: str
    checkpoint: Path
    target: Path | None = None
    alpha: float | None = None
    unlearned: bool = True  # whether the grid mixes it with the target

    def describe(self) -> dict:
        mixture = {} if self.alpha is None else {"target": str(self.target), "alpha": self.alpha}
        return {"name": self.name, "checkpoint": str(self.checkpoint), **mixture}

    def load(self, device: str = "cpu"):
        """``(model, tokenizer)`` in evaluation mode on ``device``; a mixture is mixed in memory."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from harness_ext.mixing import mix_into

        tokenizer = AutoTokenizer.from_pretrained(str(self.checkpoint))
        if self.alpha is None:
            model = AutoModelForCausalLM.from_pretrained(str(self.checkpoint))
        else:
            model = mix_into(AutoModelForCausalLM.from_pretrained(str(self.target)), self.checkpoint, self.alpha)
        return model.to(device).eval(), tokenizer


def is_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def members_of(path: str | Path) -> list[Member]:
    """The members one command-line argument names: a checkpoint folder, or every checkpoint of a demo run."""
    folder = Path(path).expanduser().resolve()
    if is_checkpoint(folder):
        return [Member(folder.name, folder)]
    models = folder / DEMO_MODELS
    if models.is_dir():
        found = sorted(child for child in models.iterdir() if is_checkpoint(child) and child.name not in NOT_IN_FAMILY)
        return [Member(child.name, child, unlearned=child.name not in NOT_MIXED) for child in found]
    raise FamilyError(f"{path}: neither a checkpoint folder (no config.json) nor a demo run folder "
                      f"(no {DEMO_MODELS}/ with checkpoints in it)")


def demo_target(paths: list[str | Path]) -> Path | None:
    """The target model of the first demo run among ``paths`` (the default ``--target`` for a mixing grid)."""
    for path in paths:
        candidate = Path(path).expanduser().resolve() / DEMO_MODELS / "target"
        if is_checkpoint(candidate):
            return candidate
    return None


def with_mixtures(members: list[Member], target: Path, alphas: list[float]) -> list[Member]:
    """``members`` followed by each unlearned member (other than the target) mixed with ``target`` at each α."""
    from harness_ext.mixing import check_alpha

    target = Path(target).expanduser().resolve()
    if not is_checkpoint(target):
        raise FamilyError(f"--target {target}: not a checkpoint folder (no config.json)")
    mixtures = [Member(f"{member.name}@{check_alpha(alpha):g}", member.checkpoint, target, float(alpha), unlearned=False)
                for member in members if member.unlearned and member.checkpoint != target for alpha in alphas]
    return members + mixtures


def build_family(paths: list[str | Path], *, mix_grid: list[float] = (), target: str | Path | None = None) -> list[Member]:
    """Every member named by ``paths``, plus the mixing grid; at least four, with distinct names."""
    members = [member for path in paths for member in members_of(path)]
    if mix_grid:
        target = target or demo_target(paths)
        if target is None:
            raise FamilyError("--mix-grid needs --target (the model each unlearned model is mixed with)")
        members = with_mixtures(members, Path(target), list(mix_grid))
    names = [member.name for member in members]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FamilyError(f"two models are named {', '.join(duplicates)}: give checkpoint folders distinct names")
    if len(members) < MIN_MODELS:
        raise FamilyError(f"a robustness study needs at least {MIN_MODELS} models, got {len(members)} "
                          f"({', '.join(names) or 'none'}): a correlation over fewer points is meaningless; "
                          "pass more checkpoints, or widen the family with --mix-grid and --target")
    return members
