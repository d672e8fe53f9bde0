"""The leaderboard's PNG plots (matplotlib, Agg): forget ES vs retain ES with the τ bar, and α–metric curves.

Both write through a temporary file and a rename, so a reader never sees half a PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import pandas as pd  # noqa: E402

from harness_ext.io import atomic_output  # noqa: E402

MARKERS = {"reference": "*", "plain": "o"}  # controlled groups: "^"; one colour per method


def save_figure(figure, path: Path) -> Path:
    """``figure`` as a PNG at ``path``, atomically; closes the figure."""
    try:
        with atomic_output(path, "wb") as stream:
            figure.savefig(stream, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return Path(path)


def plot_forget_vs_retain(table: pd.DataFrame, tau: float, path: Path) -> Path | None:
    """Forget ES (↓ better) against retain ES (→ better), one point per model, and the bar τ × target's retain ES.

    Points of the same method are joined, so each plain run is linked to its controlled versions.
    Returns None (and writes nothing) when no model has both values.
    """
    points = table.dropna(subset=["forget ES", "retain ES"])
    if points.empty:
        return None
    figure, axes = plt.subplots(figsize=(7, 5))
    colours = {method: f"C{index % 10}" for index, method in enumerate(points["method"].unique())}
    for method, rows in points.groupby("method", sort=True):
        if len(rows) > 1:
            axes.plot(rows["retain ES"], rows["forget ES"], color=colours[method], alpha=0.4, linewidth=1, zorder=1)
    for _, row in points.iterrows():
        marker = MARKERS.get(row["group"], "^")
        axes.scatter(row["retain ES"], row["forget ES"], marker=marker, s=60, color=colours[row["method"]], zorder=2)
        axes.annotate(f"{row['method']} ({row['control']})" if row["group"] != "reference" else row["method"],
                      (row["retain ES"], row["forget ES"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    target = table[(table["group"] == "reference") & (table["method"] == "target")]["retain ES"]
    if not target.empty and not math.isnan(target.iloc[0]):
        axes.axvline(tau * target.iloc[0], color="tab:red", linestyle="--", label=f"τ = {tau:g} × target's retain ES")
        axes.legend(loc="best", fontsize=8)
    axes.set_xlabel("retain ES (higher keeps more)")
    axes.set_ylabel("forget ES (lower forgets more)")
    axes.set_title("Forgetting against utility")
    return save_figure(figure, path)


def plot_alpha_curves(controls: dict[str, dict], path: Path) -> Path | None:
    """Calibration metric against α for each model's control.json trace; the chosen α dotted.

    Returns None (and writes nothing) when no trace has α values (e.g. only early stopping).
    """
    if not controls:
        return None
    figure, axes = plt.subplots(figsize=(7, 5))
    for name, control in sorted(controls.items()):
        steps = sorted((float(step["alpha"]), float(step["metric"])) for step in control["trace"]
                       if "alpha" in step and "metric" in step)
        line, = axes.plot([alpha for alpha, _ in steps], [value for _, value in steps], marker="o", label=name)
        if control.get("alpha") is not None:
            axes.axvline(float(control["alpha"]), color=line.get_color(), linestyle=":", linewidth=1)
    axes.set_xlabel("α (0 = target, 1 = unlearned)")
    axes.set_ylabel("calibration metric")
    axes.set_title("Model mixing: calibration traces")
    axes.legend(loc="best", fontsize=8)
    return save_figure(figure, path)
