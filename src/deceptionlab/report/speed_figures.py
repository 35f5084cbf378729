"""Figures of the speed measurements: verdict shares, performance and exit layers against beta.

Each figure is written as PNG and SVG. Beta is plotted on evenly spaced positions labelled with its
values, since the sweep includes beta = 0 and spans decades.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.scoring import VERDICTS
from ..measure.outcomes import frequencies
from .figures import save as _save  # sets the Agg backend

FIGURES = ("verdicts_vs_beta", "performance_vs_beta", "exit_layer_per_cell")




def _beta_axis(ax, betas) -> None:
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_xlabel("compute penalty beta")


def plot_speed(runs: pd.DataFrame, cells: pd.DataFrame, folder: str | Path) -> list[Path]:
    """Write the three figures into `folder`; returns the files written."""
    folder = Path(folder)
    widths = list(dict.fromkeys(runs.width))
    betas = list(dict.fromkeys(runs.beta))
    written = []

    freq = frequencies(runs, by=["width", "beta"])
    fig, axes = plt.subplots(1, len(widths), figsize=(4.5 * len(widths), 3.5), squeeze=False, sharey=True)
    for ax, width in zip(axes[0], widths):
        for v in VERDICTS:
            f = freq[(freq.width == width) & (freq.verdict == v)].set_index("beta").loc[betas]
            if f["count"].sum() == 0:
                continue
            err = np.vstack([f.p - f.low, f.high - f.p])
            # one colour per verdict in every panel, whichever verdicts a panel shows
            ax.errorbar(range(len(betas)), f.p, yerr=err, marker="o", capsize=3, label=v, color=f"C{VERDICTS.index(v)}")
        ax.set_title(f"width {width}")
        _beta_axis(ax, betas)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("share of runs (95% Wilson)")
    written += _save(fig, folder, "verdicts_vs_beta")

    perf = runs.groupby(["width", "beta"], sort=False)[["train_accuracy", "deploy_base"]].mean()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for width in widths:
        p = perf.loc[width].loc[betas]
        ax.plot(range(len(betas)), p.train_accuracy, marker="o", label=f"train accuracy, width {width}")
        ax.plot(range(len(betas)), p.deploy_base, marker="s", ls="--", label=f"deployment: base objective, width {width}")
    _beta_axis(ax, betas)
    ax.set_ylabel("mean over runs")
    ax.legend(fontsize=7)
    written += _save(fig, folder, "performance_vs_beta")

    exits = cells.groupby(["width", "cell", "beta"], sort=False).expected_exit.mean()
    names = list(dict.fromkeys(cells.cell))
    fig, axes = plt.subplots(1, len(widths), figsize=(3 + 1.2 * len(betas) * len(widths), 0.35 * len(names) + 1.5), squeeze=False)
    for ax, width in zip(axes[0], widths):
        grid = np.array([[exits[width, c, b] for b in betas] for c in names])
        im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=1, vmax=cells.expected_exit.max())
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < grid.max() * 0.8 else "k")
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [""] * len(names), fontsize=7)
        ax.set_title(f"E[exit layer], width {width}")
        _beta_axis(ax, betas)
    fig.colorbar(im, ax=axes[0].tolist())
    written += _save(fig, folder, "exit_layer_per_cell")
    return written
