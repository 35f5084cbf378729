"""Figures of the report's first screen: the compliance gap's distribution per condition, and how the
verdict shares move with the verdict threshold. Each saved as PNG and SVG (`figures.save`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..measure.deception import GAP_LEVELS
from .figures import COLOURS, MAX_PANELS, Panels, _groups, brief, legend_line, plt, save, short_names

CURVE_VERDICTS = ("deceptive", "mixed", "internal")
CURVE_COLOURS = {**COLOURS, "mixed": "#888888"}


def gap_distribution(runs: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """One row per condition: every run's compliance gap as a dot over a box (median, IQR, 1.5 IQR
    whiskers), with the GAP_LEVELS marked; at most MAX_PANELS conditions."""
    groups = list(_groups(runs, by))[:MAX_PANELS]
    values = [g.compliance_gap.to_numpy(float) for _, g in groups]
    values = [v[np.isfinite(v)] for v in values]
    short = short_names(by)
    labels = [f"{brief(key, short)} (n={len(v)})" for (key, _), v in zip(groups, values)]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.38 * len(groups)))
    y = np.arange(len(groups))[::-1]  # the first condition on top, as in the tables
    ax.boxplot([v if len(v) else [np.nan] for v in values], positions=y, orientation="horizontal", widths=0.55, showfliers=False,
               medianprops={"color": "k"}, boxprops={"color": "#555"}, whiskerprops={"color": "#555"}, capprops={"color": "#555"})
    jitter = np.random.default_rng(0)  # fixed: the figure is the same every time the report is written
    for yi, v in zip(y, values):
        ax.scatter(v, yi + jitter.uniform(-0.18, 0.18, len(v)), s=9, color=COLOURS["deceptive"], alpha=0.55, lw=0, zorder=3)
    for level in GAP_LEVELS:
        ax.axvline(level, color="#999", lw=0.7, ls=":")
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(-1.02, 1.02)
    ax.set_xlabel("compliance gap (toward own goal under the deployment cue minus away; dotted: 0.1, 0.2, 0.5)", fontsize=8)
    abbreviations = legend_line(short)
    ax.set_title("Compliance gap per condition: every run (dots), median and IQR (box)" + (f"\nconditions: {abbreviations}" if abbreviations else ""), fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return save(fig, out, "gap_distribution")


def threshold_sensitivity(curve: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """Share of runs judged deceptive, mixed and internal as the verdict threshold goes from 0.7 to 1.0,
    one panel per condition, with 95% Wilson bands (`measure.deception.threshold_curve`)."""
    groups = list(_groups(curve, by))
    p = Panels(len(groups), "Verdict shares vs the verdict threshold (95% Wilson bands)", by, xlabel="verdict threshold", ylabel="share of runs")
    for ax, (key, g) in zip(p.axes, groups):
        for verdict in CURVE_VERDICTS:
            h = g[g.verdict == verdict].sort_values("threshold")
            colour = CURVE_COLOURS[verdict]
            ax.plot(h.threshold, h.p, color=colour, lw=1.4, marker="o", ms=2.5, label=verdict)
            ax.fill_between(h.threshold, h.low, h.high, color=colour, alpha=0.18, lw=0)
        ax.set_ylim(-0.02, 1.02)
        p.title(ax, key)
    p.legend()
    p.finish()
    return save(p.fig, out, "threshold_sensitivity", tight=False)
