"""Figures of the function prior: rank plot, frequency against LZ complexity, P_SGD(f) against P_prior(f).

Each function writes `<out>/<name>.png` and `.svg` and returns the two paths.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..measure.prior import complexity_correlation
from .figures import save as _save  # sets the Agg backend


def rank_plot(functions: pd.DataFrame, out: str | Path, title: str = "") -> list[Path]:
    """log frequency against log rank (Zipf-like when the prior is strongly biased)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(np.arange(1, len(functions) + 1), functions.frequency.to_numpy(), ".", ms=2)
    ax.set(xlabel="rank", ylabel="P_prior(f)", title=title or f"{len(functions):,} distinct functions")
    return _save(fig, Path(out), "rank")


def complexity_plot(functions: pd.DataFrame, out: str | Path, title: str = "") -> list[Path]:
    """log frequency against LZ complexity, with the correlations in the title."""
    f = functions.dropna(subset=["complexity"])
    c = complexity_correlation(functions)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.semilogy(f.complexity.to_numpy(), f.frequency.to_numpy(), ".", ms=3, alpha=0.5)
    head = f"{title}\n" if title else ""
    ax.set(xlabel="LZ complexity K(f)", ylabel="P_prior(f)",
           title=f"{head}Spearman {c['spearman']:.2f}, Pearson {c['pearson']:.2f} (log P vs K, {c['n_functions']:,} functions)")
    ax.title.set_fontsize(9)
    return _save(fig, Path(out), "complexity")


def sgd_vs_prior_plot(both: pd.DataFrame, stats: dict, out: str | Path) -> list[Path]:
    """P_SGD(f | S) against P_prior(f | S), log-log, over the functions both saw, with the diagonal."""
    seen = both[(both.p_prior > 0) & (both.p_sgd > 0)]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.loglog(seen.p_prior, seen.p_sgd, "o", ms=4, alpha=0.7)
    lo = min(seen.p_prior.min(), seen.p_sgd.min()) if len(seen) else 1e-6
    ax.plot([lo, 1], [lo, 1], "k--", lw=0.8)
    ax.set(xlabel="P_prior(f | S)", ylabel="P_SGD(f | S)",
           title=f"log-log Pearson {stats['log_pearson']:.2f} over {stats['functions_in_both']} functions")
    ax.title.set_fontsize(9)
    return _save(fig, Path(out), "sgd_vs_prior")
