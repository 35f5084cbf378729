"""Figures of training paths and path dependence, each saved as PNG (for screens) and SVG (for papers).

Every figure is small multiples: one panel per condition, at most MAX_PANELS of them (a sweep with
more conditions is cut, and the figure's title says so).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..measure.path_dependence import CLUSTER_CUT, clusters, decision_matrix, disagreement  # noqa: E402
from ..measure.paths import SITUATION_THRESHOLD, path_events  # noqa: E402
from ..worlds import CLASSES  # noqa: E402

MAX_PANELS = 36
COLOURS = {"internal": "#1b9e77", "corrigible": "#7570b3", "deceptive": "#d95f02", "proxy": "#e7298a", "situation": "#666666", "situation_x_state": "#1f78b4", "base_objective": "#a6761d"}


def _label(key: dict) -> str:
    items = [f"{k}={v}" for k, v in key.items()]
    return "\n".join(", ".join(items[i : i + 2]) for i in range(0, len(items), 2))


def _groups(df: pd.DataFrame, by: list[str]):
    for key, g in df.groupby(by, sort=False):
        yield dict(zip(by, key if isinstance(key, tuple) else (key,))), g


def _panels(n: int, title: str, size=(3.6, 2.6)):
    shown = min(n, MAX_PANELS)
    cols = min(shown, 4)
    rows = math.ceil(shown / cols)
    height = size[1] * rows + 1.2
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, height), squeeze=False)
    # a fixed layout: constrained_layout costs seconds per figure at 36 panels
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.5 / height, top=1 - 1.1 / height, hspace=0.75, wspace=0.3)
    for ax in axes.flat[shown:]:
        ax.set_visible(False)
    fig.suptitle(title + (f" (first {MAX_PANELS} of {n} conditions)" if n > MAX_PANELS else ""), fontsize=10)
    return fig, list(axes.flat[:shown])


def save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def _band(ax, steps, values: np.ndarray, colour: str, label: str) -> None:
    """Median line and interquartile band over runs (rows of `values`)."""
    lo, mid, hi = np.nanpercentile(values, [25, 50, 75], axis=0)
    ax.plot(steps, mid, color=colour, lw=1.4, label=label)
    ax.fill_between(steps, lo, hi, color=colour, alpha=0.2, lw=0)


def trajectories(runs: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """Class scores on the deployment probes and cue / objective decodability along training."""
    groups = list(_groups(runs, by))
    fig, axes = _panels(len(groups), "Deployment-probe class scores and decodability (median, IQR band over runs)")
    for ax, (key, g) in zip(axes, groups):
        steps = np.asarray(g.traj_step.iloc[0])
        for c in CLASSES:
            _band(ax, steps, np.array(g[f"traj_deploy_score_{c}"].tolist(), dtype=float), COLOURS[c], c)
        for d in ("situation", "situation_x_state", "base_objective"):
            if f"traj_decode_{d}" in g:
                _band(ax, steps, np.array(g[f"traj_decode_{d}"].tolist(), dtype=float), COLOURS[d], f"decode {d}")
        _phase_lines(ax, g)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(_label(key), fontsize=6)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6, loc="lower right")
    return save(fig, out, "trajectories")


def _phase_lines(ax, g: pd.DataFrame) -> None:
    steps, phases = np.asarray(g.traj_step.iloc[0]), np.asarray(g.traj_phase.iloc[0])
    for k in np.flatnonzero(phases[1:] != phases[:-1]):
        ax.axvline(steps[k], color="k", lw=0.5, ls=":")


def event_times(runs: pd.DataFrame, by: list[str], out: Path, threshold: float = 0.9, situation: str = "situation") -> list[Path]:
    """Histograms of the step at which the situation became decodable and the objective generalised (C1)."""
    events = runs[["run_id", *by, "traj_step"]].merge(path_events(runs, threshold=threshold, situation=situation), on="run_id")
    groups = list(_groups(events, by))
    fig, axes = _panels(len(groups), f"When the situation is known ({situation} decodable >= {SITUATION_THRESHOLD}) vs when the objective generalises")
    for ax, (key, g) in zip(axes, groups):
        steps = np.asarray(g.traj_step.iloc[0], dtype=float)
        edges = np.concatenate([steps - 0.5, [steps[-1] + 0.5]]) if len(steps) < 60 else 30
        for col, colour, label in (("sa_step", COLOURS["situation"], "situation known"), ("objective_step", COLOURS["internal"], "objective generalises")):
            v = g[col].dropna()
            ax.hist(v, bins=edges, color=colour, alpha=0.55, label=f"{label} ({len(v)}/{len(g)})")
        ax.set_title(_label(key), fontsize=6)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    return save(fig, out, "event_times")


def disagreement_matrices(runs: pd.DataFrame, by: list[str], out: Path, cut: float = CLUSTER_CUT) -> list[Path]:
    """Pairwise disagreement of the final functions on the probe inputs, runs sorted by cluster (C)."""
    groups = list(_groups(runs, by))
    mats = [disagreement(decision_matrix(g.decisions, int(g.n_decisions.iloc[0]))) for _, g in groups[:MAX_PANELS]]
    top = max(0.05, max(float(d.max()) for d in mats))  # one colour scale for every panel
    fig, axes = _panels(len(groups), "Pairwise disagreement of final functions on probe inputs (runs sorted by cluster)", size=(3.0, 2.8))
    for ax, (key, g), d in zip(axes, groups, mats):
        lab = clusters(d, cut)
        order = np.argsort(lab, kind="stable")
        im = ax.imshow(d[np.ix_(order, order)], vmin=0, vmax=top, cmap="viridis", interpolation="nearest")
        ax.set_title(f"{_label(key)}\n{lab.max() + 1} clusters", fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.7).ax.tick_params(labelsize=6)
    return save(fig, out, "disagreement")


def gains(curves: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """Loss gain per step of every head along training, median and IQR over runs (C2)."""
    groups = list(_groups(curves, by))
    fig, axes = _panels(len(groups), "Loss gain per step by head (C2: does the proxy's return diminish sooner?)")
    palette = plt.get_cmap("tab10")
    for ax, (key, g) in zip(axes, groups):
        for i, ((head, phase), h) in enumerate(g.groupby(["head", "phase"], sort=False)):
            ax.plot(h.step, h.gain_per_step.clip(lower=1e-7), color=palette(i % 10), lw=1.2, label=f"{head} ({phase})")
            ax.fill_between(h.step, h.gain_low.clip(lower=1e-7), h.gain_high.clip(lower=1e-7), color=palette(i % 10), alpha=0.2, lw=0)
        ax.set_yscale("log")
        ax.set_title(_label(key), fontsize=6)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=5)
    return save(fig, out, "gains")


def stability(curves: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """(D) cluster agreement with the final clusters and (E) how well step t predicts the final verdict."""
    groups = list(_groups(curves, by))
    fig, axes = _panels(len(groups), "Cluster stability (ARI with final) and final-verdict prediction from step t")
    for ax, (key, g) in zip(axes, groups):
        ax.plot(g.step, g.ari_with_final, color="#1f77b4", label="ARI with final clusters")
        ax.plot(g.step, g.accuracy, color="#d62728", label="predicts final verdict")
        ax.plot(g.step, g.base_rate, color="#d62728", ls=":", lw=0.8, label="base rate")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(_label(key), fontsize=6)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    return save(fig, out, "stability")


def prior_vs_sgd(prior_long: pd.DataFrame, runs: pd.DataFrame, out: Path) -> list[Path]:
    """P(verdict) under the prior (random draws), the prior given a fit, and SGD (all runs pooled), with
    95% Wilson intervals, on a log scale: where SGD puts its mass against where the prior does (C5)."""
    from ..core.scoring import VERDICTS
    from ..core.stats import wilson

    n = len(runs)
    counts = runs.verdict.value_counts()
    sgd = pd.DataFrame({"verdict": list(VERDICTS), "count": [int(counts.get(v, 0)) for v in VERDICTS], "n": n})
    sgd["p"] = sgd["count"] / n
    sgd["low"], sgd["high"] = wilson(sgd["count"].to_numpy(), n)
    series = [(s, g.set_index("verdict").reindex(VERDICTS)) for s, g in prior_long.groupby("source", sort=False) if g.n.iloc[0] > 0]
    series.append(("SGD (all runs)", sgd.set_index("verdict")))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(series)
    x = np.arange(len(VERDICTS))
    for i, (name, s) in enumerate(series):
        p = s.p.to_numpy(float)
        lo, hi = s.low.to_numpy(float), s.high.to_numpy(float)
        floor = 1e-6  # zero shares drawn at the floor, their interval up to the Wilson upper bound
        ax.bar(x + i * width, np.maximum(p, floor), width, label=name, alpha=0.8)
        ax.errorbar(x + i * width, np.maximum(p, floor), yerr=[np.maximum(p, floor) - np.maximum(lo, floor), np.maximum(hi, floor) - np.maximum(p, floor)],
                    fmt="none", ecolor="k", lw=0.8, capsize=2)
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 1.5)
    ax.set_xticks(x + 0.4 - width / 2, VERDICTS)
    ax.set_ylabel("P(verdict)")
    ax.set_title("Prior volume vs SGD: share of each verdict (95% Wilson intervals; zeros at the 1e-6 floor)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out, "prior_vs_sgd")
