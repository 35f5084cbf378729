"""The counting figure: P(class) per source (naive, prior, NNGP posterior, SGD) on a log scale with
95% intervals, one panel per condition; a class no sample fell in is drawn as its interval's upper
bound (a downward triangle)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CLASSES = ("internal", "corrigible", "deceptive", "proxy", "mixed")
SOURCES = {"naive": "naive count", "prior": "P_prior (random nets)", "nngp": "P_B (NNGP | S)", "sgd": "P_SGD"}


def class_probabilities(table: pd.DataFrame, out: Path) -> list[Path]:
    conditions = list(dict.fromkeys(table.condition))
    fig, axes = plt.subplots(len(conditions), 1, figsize=(10, 3.2 * len(conditions)), squeeze=False)
    sources = [s for s in SOURCES if s in set(table.source)]
    floor = max(1e-7, 0.3 * float(table.high[table.high > 0].min()))
    for ax, cond in zip(axes[:, 0], conditions):
        t = table[table.condition == cond].set_index(["source", "verdict"])
        for i, src in enumerate(sources):
            xs = np.arange(len(CLASSES)) + (i - (len(sources) - 1) / 2) * 0.18
            for x, v in zip(xs, CLASSES):
                if (src, v) not in t.index:  # a source measured on some conditions only (P_prior at the default init)
                    continue
                r = t.loc[(src, v)]
                if r.p > 0:
                    ax.errorbar(x, r.p, yerr=[[r.p - max(r.low, floor)], [r.high - r.p]], fmt="o", color=f"C{i}", capsize=3,
                                label=SOURCES[src] if v == CLASSES[0] else None)
                else:
                    ax.plot([x, x], [floor, r.high], color=f"C{i}", lw=1)
                    ax.plot(x, r.high, "v", color=f"C{i}", label=SOURCES[src] if v == CLASSES[0] else None)
        ax.set_yscale("log")
        ax.set_ylim(floor, 1.5)
        ax.set_xticks(range(len(CLASSES)), CLASSES)
        ax.set_ylabel("P(class)")
        ax.set_title(cond, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("The counting argument: P(class) per source (95% intervals; triangle: upper bound, none seen)", fontsize=10)
    fig.tight_layout()
    paths = [out / "counting.png", out / "counting.svg"]
    for p in paths:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return paths
