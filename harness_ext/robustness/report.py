"""The study's report: ``robustness.md``, ``.csv``, ``.json`` and the figure ``robustness.png``, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness_ext.io import atomic_output, atomic_write_json, atomic_write_text

COLUMNS = ("metric", "attack", "split", "surface", "n", "pcc", "pcc_low", "pcc_high", "spearman", "slope",
           "intercept", "mean_shift")
FILES = ("robustness.md", "robustness.csv", "robustness.json", "robustness.png")


def write_report(study: dict, out: Path) -> None:
    from harness_ext.robustness.figure import draw_figure

    table = pd.DataFrame(study["statistics"], columns=list(COLUMNS))
    with atomic_output(out / "robustness.csv") as stream:
        table.to_csv(stream, index=False, float_format="%.6g")
    atomic_write_json(out / "robustness.json", study)
    atomic_write_text(out / "robustness.md", markdown(study, table))
    import matplotlib.pyplot as plt

    figure = draw_figure(study)
    try:
        with atomic_output(out / "robustness.png", "wb") as stream:
            figure.savefig(stream, format="png", dpi=110)
    finally:
        plt.close(figure)


def _pcc_table(table: pd.DataFrame) -> str:
    """Metrics × (attack, split): ``PCC [low, high]``."""
    table = table.assign(cell=[f"{pcc:.2f} [{low:.2f}, {high:.2f}]" if pd.notna(pcc) else "–"
                               for pcc, low, high in zip(table["pcc"], table["pcc_low"], table["pcc_high"])])
    wide = table.pivot_table(index="metric", columns=["attack", "split"], values="cell", aggfunc="first", sort=False)
    wide.columns = [f"{attack} ({split})" for attack, split in wide.columns]
    return wide.fillna("").to_markdown()


def _ranking_table(study: dict) -> str:
    ranked = pd.DataFrame(study["ranking"]).rename(columns={
        "mean_pcc": "mean PCC (all attacks, both splits)", "surface_pcc": "mean PCC (surface-only attacks)",
        "surface_slope": "mean slope (surface-only attacks)"})
    ranked.index = range(1, len(ranked) + 1)
    return ranked.to_markdown(floatfmt=".3f").replace(" nan ", "   – ")


def _models(study: dict) -> str:
    lines = []
    for model in study["models"]:
        mixture = f" = (1 − {model['alpha']:g})·target + {model['alpha']:g}·checkpoint" if "alpha" in model else ""
        lines.append(f"- `{model['name']}`: `{model['checkpoint']}`{mixture}")
    return "\n".join(lines)


def _attacks(study: dict) -> str:
    return "\n".join(f"- `{name}` ({'surface-only' if spec['surface'] else 'may change knowledge'}): "
                     f"`{spec['params']}`" for name, spec in study["attacks"].items())


def markdown(study: dict, table: pd.DataFrame) -> str:
    full = table.drop(columns=["surface"]).to_markdown(index=False, floatfmt=".3f")
    return "\n\n".join([
        "# Metric robustness", study["sentence"],
        f"{len(study['models'])} models, each scored clean (before) and under each attack (after); per "
        "(metric, attack, split): Pearson correlation (PCC) with its 95 % confidence interval (Fisher z), "
        "Spearman ρ, the least-squares fit after = slope·before + intercept, and the mean shift after − before. "
        "A robust metric keeps PCC near 1; under a surface-only attack also slope near 1 (Wang et al., ICLR 2025). "
        "Figure: robustness.png. Definitions: docs/robustness.md.",
        "## Ranking", _ranking_table(study),
        "## PCC [95 % CI]", _pcc_table(table),
        "## All statistics", full,
        "## Models", _models(study),
        "## Attacks", _attacks(study),
    ]) + "\n"
