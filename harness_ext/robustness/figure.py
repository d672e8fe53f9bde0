"""``robustness.png``: a grid of before/after scatter plots, metrics (rows) × attacks (columns).

Each panel: one point per model and split (forget and retain in two colours), the identity line, the
least-squares fit of each split, and the PCC of each split.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness_ext.robustness.scoring import CLEAN  # noqa: E402

COLOURS = {"forget": "tab:red", "retain": "tab:blue"}
PANEL_INCHES = 2.1


def draw_figure(study: dict):
    """The figure (a matplotlib Figure) of ``study`` as returned by ``run_study``."""
    rows = study["statistics"]
    metrics = list(dict.fromkeys(row["metric"] for row in rows))
    attacks = list(study["attacks"])
    figure, axes = plt.subplots(len(metrics), len(attacks), squeeze=False, sharex="row",
                                figsize=(PANEL_INCHES * len(attacks) + 0.6, PANEL_INCHES * len(metrics) + 0.8))
    by_cell = {(row["metric"], row["attack"], row["split"]): row for row in rows}
    for i, metric in enumerate(metrics):
        for j, attack in enumerate(attacks):
            _panel(axes[i][j], study["scores"], metric, attack, by_cell)
            if i == 0:
                axes[i][j].set_title(attack, fontsize=9)
            if j == 0:
                axes[i][j].set_ylabel(f"{metric}\nafter", fontsize=8)
            if i == len(metrics) - 1:
                axes[i][j].set_xlabel("before (clean)", fontsize=8)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour, label=split) for split, colour in COLOURS.items()]
    axes[0][0].legend(handles=handles, loc="lower right", fontsize=6, frameon=False)
    figure.suptitle("Before vs after each attack\none point per model; lines: fits; dashed: identity", fontsize=9)
    figure.tight_layout()
    return figure


def _panel(ax, scores: dict, metric: str, attack: str, by_cell: dict) -> None:
    ax.tick_params(labelsize=6)
    labels, values = [], []
    for split, colour in COLOURS.items():
        row = by_cell.get((metric, attack, split))
        if row is None:
            continue
        before = [scores[member][CLEAN][split][metric] for member in scores]
        after = [scores[member][attack][split][metric] for member in scores]
        ax.scatter(before, after, s=10, color=colour, alpha=0.8)
        values += before + after
        if not math.isnan(row["slope"]):
            low, high = min(before), max(before)
            ax.plot([low, high], [row["intercept"] + row["slope"] * low, row["intercept"] + row["slope"] * high],
                    color=colour, linewidth=1)
        labels.append(f"{split} {row['pcc']:.2f}" if not math.isnan(row["pcc"]) else f"{split} –")
    if not labels:
        ax.text(0.5, 0.5, "not applicable", ha="center", va="center", fontsize=7, transform=ax.transAxes)
        return
    finite = [value for value in values if not math.isnan(value)]
    if finite:
        low, high = min(finite), max(finite)
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=0.8)
    ax.text(0.03, 0.97, "PCC " + "  ".join(labels), transform=ax.transAxes, va="top", fontsize=6)
