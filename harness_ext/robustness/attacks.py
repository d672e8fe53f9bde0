"""The attacks of the robustness study, by name: what each one changes and the parameters it runs with.

Input attacks (``noise``, ``jailbreak``, ``paraphrase``) are applied by the tasks themselves through
task metadata (``unlearn_tasks.attacks``); model attacks (``relearn``, ``quantize8``/``quantize4``,
``probe_lens``/``probe_trained``) turn the loaded model into an attacked copy (``harness_ext.attacks``,
``harness_ext.models.probe``). ``surface`` attacks change only surface behaviour, so a trustworthy
metric keeps its value under them (PCC → 1 and slope → 1); the others may change knowledge (PCC alone).
See docs/robustness.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from unlearn_tasks.errors import UnlearnBenchError

DEFAULT_ATTACKS = ("noise", "jailbreak", "paraphrase", "relearn", "quantize4", "probe_lens")


class AttackNameError(UnlearnBenchError, ValueError):
    """An ``--attacks`` list naming an unknown attack, one attack twice, or none."""


@dataclass(frozen=True)
class AttackSettings:
    """Every parameter of every attack (the study records those of the attacks it runs)."""

    forget: str = "forget10"  # TOFU forget split: the relearning data
    retain: str = "retain90"  # what probe_trained's head is trained on
    noise_rate: float = 0.3
    jailbreak_template: str = "role_play"
    relearn_steps: int | None = None  # None: one epoch over the forget set
    relearn_lr: float = 1e-5
    relearn_batch_size: int = 8
    probe_layer: int = -2
    probe_steps: int = 100
    probe_lr: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class Attack:
    """One study attack: its task metadata (input attacks) or model transformation (model attacks)."""

    name: str
    surface: bool
    params: Callable[[AttackSettings], dict]
    transform: Callable[[object, object, dict], object] | None = None  # (model, tokenizer, params) -> attacked copy
    changes_metric: dict = field(default_factory=dict)  # metric → False where the attack cannot change it

    @property
    def is_input(self) -> bool:
        return self.transform is None

    def metadata(self, params: dict) -> dict:
        return dict(params) if self.is_input else {}


def _relearned(model, tokenizer, params: dict):
    from harness_ext.attacks import relearn

    return relearn.relearned(model, tokenizer, f"tofu:{params['data']}", steps=params["steps"], lr=params["lr"],
                             seed=params["seed"], batch_size=params["batch_size"])


def _quantized(model, tokenizer, params: dict):
    """The library quantises while loading a checkpoint: the member (maybe a mixture) goes through a folder."""
    import tempfile

    from harness_ext.attacks import quantize

    with tempfile.TemporaryDirectory(prefix="unlearn-quantize-") as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return quantize.quantized(folder, params["bits"], device=str(model.device))


def _probed(model, tokenizer, params: dict):
    """Probing changes the model in place: it works on a copy, the member stays as it is."""
    import copy

    from harness_ext.models.probe import probed

    model = copy.deepcopy(model)
    if params["head"] == "lens":
        return probed(model, params["layer"], head="lens")
    return probed(model, params["layer"], head="trained", tokenizer=tokenizer, rows=f"tofu:{params['data']}",
                  steps=params["steps"], lr=params["lr"], seed=params["seed"])


def _relearn_params(settings: AttackSettings) -> dict:
    return {"data": settings.forget, "steps": settings.relearn_steps, "lr": settings.relearn_lr,
            "batch_size": settings.relearn_batch_size, "seed": settings.seed}


def _probe_trained_params(settings: AttackSettings) -> dict:
    return {"head": "trained", "layer": settings.probe_layer, "data": settings.retain, "steps": settings.probe_steps,
            "lr": settings.probe_lr, "seed": settings.seed}


ATTACKS: dict[str, Attack] = {attack.name: attack for attack in (
    Attack("noise", False, lambda s: {"attack": "noise", "attack_rate": s.noise_rate, "attack_seed": s.seed}),
    Attack("jailbreak", True, lambda s: {"attack": "jailbreak", "attack_template": s.jailbreak_template}),
    # es_para already reads the paraphrased question; the MIA documents (forgetXX/holdoutXX) have none
    Attack("paraphrase", True, lambda s: {"attack": "paraphrase"}, changes_metric={"es_para": False, "mia_auc_loss": False}),
    Attack("relearn", False, _relearn_params, _relearned),
    Attack("quantize8", False, lambda s: {"bits": 8}, _quantized),
    Attack("quantize4", False, lambda s: {"bits": 4}, _quantized),
    Attack("probe_lens", True, lambda s: {"head": "lens", "layer": s.probe_layer}, _probed),
    Attack("probe_trained", True, _probe_trained_params, _probed),
)}


def get_attacks(names: list[str]) -> list[Attack]:
    """The attacks named, in order; an unknown or repeated name is an error listing the known ones."""
    unknown = [name for name in names if name not in ATTACKS]
    if unknown:
        raise AttackNameError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
    if len(set(names)) != len(names) or not names:
        raise AttackNameError(f"give each attack once, at least one: got {', '.join(names) or 'none'}")
    return [ATTACKS[name] for name in names]
