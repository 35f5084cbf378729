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
SOURCES = {"naive": "naive count", "prior": "P_prior (random nets)", "nngp": "P_B (NNGP | S)", "finite": "P_B (networks | S)", "sgd": "P_SGD"}


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
    return _save(fig, "The counting argument: P(class) per source (95% intervals; triangle: upper bound, none seen)", out, "counting")


def function_level(functions: pd.DataFrame, out: Path, max_panels: int = 4) -> list[Path]:
    """P_B(f | S) against P_SGD(f | S) on log-log axes for the held-out functions SGD produced (Mingard et al.
    2021), one panel per condition (the first `max_panels`): 95% intervals both ways, the diagonal, and
    Pearson r of the logs (`measure.counting.functions.correlation`); a function the posterior never
    produced is drawn at the posterior's upper bound (a left-pointing triangle)."""
    from ..measure.counting.functions import correlation

    out = Path(out)
    conditions = list(dict.fromkeys(functions.condition))[:max_panels]
    fig, axes = plt.subplots(1, len(conditions), figsize=(4.2 * len(conditions) + 0.6, 4.2), squeeze=False)
    for ax, cond in zip(axes[0], conditions):
        f = functions[functions.condition == cond]
        sgd, post = f[f.source == "sgd"].set_index("function"), f[f.source == "nngp"].set_index("function")
        if sgd.empty or post.empty:
            ax.set_axis_off()
            ax.set_title(f"{cond}: no fitted runs", fontsize=9)
            continue
        both = sgd.index.intersection(post.index)
        alone = sgd.index.difference(post.index)
        bar = lambda t: np.clip([t.p - t.low, t.high - t.p], 0, None)  # noqa: E731  (clipped: an interval end rounded past p)
        ax.errorbar(post.loc[both, "p"], sgd.loc[both, "p"], xerr=bar(post.loc[both]), yerr=bar(sgd.loc[both]), fmt="o", ms=4, alpha=0.8, lw=0.8)
        if len(alone):
            bound = float(post.high.min()) if len(post) else 1.0 / max(1, int(post.n.max()) if len(post) else 1)
            ax.plot(np.full(len(alone), bound), sgd.loc[alone, "p"], "<", color="C3", ms=5, label="not produced by the posterior")
            ax.legend(fontsize=7, loc="lower right")
        lo = max(1e-6, 0.5 * min(float(post.low[post.low > 0].min()) if (post.low > 0).any() else 1e-4, float(sgd.low[sgd.low > 0].min()) if (sgd.low > 0).any() else 1e-4))
        ax.plot([lo, 1], [lo, 1], "k--", lw=0.8, alpha=0.6)
        ax.set(xscale="log", yscale="log", xlim=(lo, 1.2), ylim=(lo, 1.2), xlabel="P_B(f | S), NNGP posterior", ylabel="P_SGD(f | S), trained runs")
        c = correlation(f)
        r = "n/a" if c["r_log10"] != c["r_log10"] else f"{c['r_log10']:.2f}"
        ax.set_title(f"{cond}\nr(log) = {r} over {c['functions_both']} of {c['functions_sgd']} functions", fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, "Function level: P_B(f | S) vs P_SGD(f | S) on held-out probe inputs (95% intervals)", out, "functions")


def _save(fig, title: str, out: Path, stem: str) -> list[Path]:
    """Title, lay out and write `fig` as out/stem.png and .svg; close it."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    paths = [Path(out) / f"{stem}.png", Path(out) / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=120)
    plt.close(fig)
    return paths
