"""The theory fitted and tested (docs/theory.md, "Fitting"), drawn from its tables: predicted against
measured per held-out condition. Renders only: the fit is computed in `deceptionlab.theory` and
passed in as data (its `predictions` table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .figures import plt, save

MODEL_COLOURS = {"path model": "#d95f02", "bias model": "#7570b3", "null": "#1b9e77", "path (texts)": "#999999", "bias (texts)": "#cccccc"}
SHOWN = ("path model", "null", "path (texts)")  # the fitted theory, the null, and the texts' unfitted values


def _colour(model: str) -> str:
    return next((c for k, c in MODEL_COLOURS.items() if model.startswith(k)), "#333333")


def predicted_vs_measured(predictions: pd.DataFrame, out: Path, models: tuple[str, ...] = SHOWN) -> list[Path]:
    """One point per held-out condition and verdict share (and share of runs with gap > 0.5) per model:
    x the measured share with its 95% Wilson interval, y the predicted one with its 95% posterior
    interval; the diagonal is a perfect prediction. A share both measured and predicted below 1% is
    left out (it would pile up at the origin)."""
    p = predictions[predictions.quantity.str.match(r"P\((internal|corrigible|deceptive|proxy|mixed|unfit)\)|P\(gap > 0.5\)")]
    p = p[(p.measured > 0.01) | (p.predicted > 0.01)]
    fig, ax = plt.subplots(figsize=(5.6, 5.4))
    ax.plot([0, 1], [0, 1], color="#333", lw=0.8, ls="--", zorder=1)
    for model in models:
        g = p[p.model.str.startswith(model)]
        if g.empty:
            continue
        x, y = g.measured.to_numpy(float), g.predicted.to_numpy(float)
        xerr = np.abs(np.stack([x - g.measured_low.to_numpy(float), g.measured_high.to_numpy(float) - x]))
        yerr = np.abs(np.stack([y - g.predicted_low.to_numpy(float), g.predicted_high.to_numpy(float) - y]))
        ax.errorbar(x, y, xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr), fmt="o", ms=4, lw=0.8, capsize=2,
                    color=_colour(model), alpha=0.8, label=g.model.iloc[0], zorder=3)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("measured share of held-out runs (95% Wilson)")
    ax.set_ylabel("predicted share (95% posterior interval)")
    ax.set_title("Held-out conditions: P(verdict) and P(gap > 0.5)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return save(fig, Path(out), "theory_fit")
