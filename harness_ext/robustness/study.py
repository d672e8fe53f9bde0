"""The metric-robustness study of Wang et al. (ICLR 2025) on any family of checkpoints.

Every member is scored clean and under every attack (:mod:`harness_ext.robustness.scoring`); for each
(metric, attack, split) the before/after pairs over the family give the statistics of
:func:`unlearn_metrics.robustness.pair_statistics`; the metrics are ranked by their mean PCC.
See docs/robustness.md, "The study".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from harness_ext.robustness.attacks import DEFAULT_ATTACKS, Attack, AttackSettings, get_attacks
from harness_ext.robustness.family import Member
from harness_ext.robustness.scoring import CLEAN, METRICS, Scorer, ScoringSettings
from unlearn_metrics.robustness import pair_statistics

STATISTICS = ("n", "pcc", "pcc_low", "pcc_high", "spearman", "slope", "intercept", "mean_shift")


@dataclass(frozen=True)
class StudyConfig:
    attacks: tuple[str, ...] = DEFAULT_ATTACKS
    attack_settings: AttackSettings = field(default_factory=AttackSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)


def score_family(members: list[Member], attacks: list[Attack], config: StudyConfig, cache: Path, log=print) -> dict:
    """``{member: {attack or "clean": {split: {metric: value}}}}``, one member in memory at a time."""
    from harness_ext.provenance import content_hash

    scorer = Scorer(config.scoring, cache, log)
    scores = {}
    for member in members:
        model, tokenizer = member.load(config.scoring.device)
        member_hash = content_hash(model, tokenizer)
        scores[member.name] = {CLEAN: scorer.scores(member.name, member_hash, model, tokenizer, None, {})}
        for attack in attacks:
            params = attack.params(config.attack_settings)
            scores[member.name][attack.name] = scorer.scores(member.name, member_hash, model, tokenizer, attack, params)
        del model
    return scores


def cells(attacks: list[Attack]):
    """Every (metric, attack, split) of the study: where the metric has the split and the attack can move it."""
    for metric in METRICS:
        for attack in attacks:
            if attack.changes_metric.get(metric.name, True):
                for split in metric.keys:
                    yield metric.name, attack, split


def statistics_rows(scores: dict, attacks: list[Attack]) -> list[dict]:
    """One row per cell: the statistics of after on before over the family (NaN where fewer than 4 pairs)."""
    rows = []
    for metric, attack, split in cells(attacks):
        before = [scores[member][CLEAN][split][metric] for member in scores]
        after = [scores[member][attack.name][split][metric] for member in scores]
        try:
            values = pair_statistics(before, after)
        except ValueError:  # fewer than four models with both values
            values = {name: math.nan for name in STATISTICS} | {"n": int(np.sum(~np.isnan(np.add(before, after))))}
        rows.append({"metric": metric, "attack": attack.name, "split": split, "surface": attack.surface, **values})
    return rows


def _mean(values: list[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return float(np.mean(finite)) if finite else math.nan


def ranking(rows: list[dict]) -> list[dict]:
    """Metrics by mean PCC over attacks and splits, most robust first (NaN last); with the surface-only means."""
    ranked = []
    for metric in dict.fromkeys(row["metric"] for row in rows):
        own = [row for row in rows if row["metric"] == metric]
        surface = [row for row in own if row["surface"]]
        ranked.append({"metric": metric, "mean_pcc": _mean([row["pcc"] for row in own]),
                       "surface_pcc": _mean([row["pcc"] for row in surface]),
                       "surface_slope": _mean([row["slope"] for row in surface])})
    return sorted(ranked, key=lambda entry: (math.isnan(entry["mean_pcc"]), -np.nan_to_num(entry["mean_pcc"])))


def ranking_sentence(ranked: list[dict], attacks: list[Attack]) -> str:
    """The ranking in one sentence: mean PCC over everything, then over the surface-only attacks with the slope."""
    overall = " > ".join(f"{entry['metric']} ({entry['mean_pcc']:.2f})" for entry in ranked)
    surface_names = [attack.name for attack in attacks if attack.surface]
    if not surface_names:
        return f"Metrics by mean PCC over all attacks and both splits, most robust first: {overall}."
    by_surface = sorted(ranked, key=lambda entry: (math.isnan(entry["surface_pcc"]), -np.nan_to_num(entry["surface_pcc"])))
    surface = " > ".join(f"{entry['metric']} ({entry['surface_pcc']:.2f}, slope {entry['surface_slope']:.2f})"
                         for entry in by_surface)
    return (f"Metrics by mean PCC over all attacks and both splits, most robust first: {overall}; "
            f"on the surface-only attacks ({', '.join(surface_names)}; ideal PCC 1 and slope 1): {surface}.")


def run_study(members: list[Member], config: StudyConfig, out: str | Path, *, cache: Path | None = None,
              log=print) -> dict:
    """Score the family, compute the statistics and ranking, write the report files into ``out``; the study."""
    from harness_ext.robustness.report import write_report

    out = Path(out).expanduser().resolve()
    attacks = get_attacks(list(config.attacks))
    scores = score_family(members, attacks, config, cache or out / "cache", log)
    rows = statistics_rows(scores, attacks)
    ranked = ranking(rows)
    study = {"sentence": ranking_sentence(ranked, attacks), "ranking": ranked, "statistics": rows,
             "models": [member.describe() for member in members],
             "attacks": {attack.name: {"surface": attack.surface, "params": attack.params(config.attack_settings)}
                         for attack in attacks},
             "settings": {"scoring": asdict(config.scoring), "attacks": asdict(config.attack_settings)},
             "scores": scores}
    write_report(study, out)
    return study
