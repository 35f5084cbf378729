"""Figures of training paths and path dependence, each saved as PNG (for screens) and SVG (for papers).

Every figure of conditions is small multiples (`Panels`): one panel per condition, at most MAX_PANELS
of them (a sweep with more conditions is cut, and the figure's title says so), axes shared and
labelled on the outer panels, each panel titled by its condition in brief (the axes' short names,
their legend under the figure's title) and one legend for the whole figure, outside the data.
Text is at least 7 pt at 100% zoom.
"""

from __future__ import annotations

import math
import re
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
DPI = 110
COLOURS = {"internal": "#1b9e77", "corrigible": "#7570b3", "deceptive": "#d95f02", "proxy": "#e7298a", "situation": "#666666", "situation_x_state": "#1f78b4", "base_objective": "#a6761d"}
TITLE, LABEL, TICK = 8, 8, 7  # font sizes (pt) of panel titles, axis labels and tick labels


def short_names(names) -> dict[str, str]:
    """Each axis name's short form for panel titles: a name of several words by its initials
    (situational_awareness: sa), a one-word name as it is; distinct."""
    out, taken = {}, set()
    for name in names:
        words = [w for w in re.split(r"[_\s.]+", str(name)) if w]
        short = "".join(w[0] for w in words) if len(words) > 1 else str(name)
        while short in taken:
            short += "'"
        taken.add(short)
        out[name] = short
    return out


def brief(key: dict, short: dict[str, str] | None = None, per_line: int = 0) -> str:
    """A condition in brief, e.g. "cc=16 · sa=interaction · om=True"; `per_line` > 0 breaks it after that many values."""
    short = short or short_names(key)
    items = [f"{short.get(k, k)}={v}" for k, v in key.items()]
    if per_line <= 0:
        return " · ".join(items)
    return "\n".join(" · ".join(items[i : i + per_line]) for i in range(0, len(items), per_line))


def legend_line(short: dict[str, str]) -> str:
    """The abbreviations a figure's panel titles use, e.g. "cc = cue_copies, sa = situational_awareness"."""
    return ", ".join(f"{s} = {n}" for n, s in short.items() if s != n)


def _groups(df: pd.DataFrame, by: list[str]):
    for key, g in df.groupby(by, sort=False):
        yield dict(zip(by, key if isinstance(key, tuple) else (key,))), g


class Panels:
    """Small multiples of `n` conditions over the axes `by`: `self.axes` (the shown panels, row by row),
    titled by `title(ax, key)`, one figure legend under the panels (`legend`), and `finish()` giving every
    panel the same x range (and y range when `sharey`), tick labels and axis labels on the outer panels only.

    Drawn fast on purpose: a fixed layout (constrained layout and tight bounding boxes cost seconds per
    figure at 36 panels), no minor ticks, at most five major ones, and limits set by hand rather than by
    matplotlib's shared axes (whose sibling bookkeeping grows with the square of the panels)."""

    def __init__(self, n: int, title: str, by: list[str], *, size=(3.4, 2.3), cols: int = 4, sharey: bool = True,
                 xlabel: str = "", ylabel: str = "", legend_rows: int = 1, bottom: float = 0.55, title_lines: int = 3):
        self.shown = min(n, MAX_PANELS)
        self.cols = max(1, min(self.shown, cols))
        self.rows = math.ceil(self.shown / self.cols)
        self.short = short_names(by)
        self.sharey, self.xlabel, self.ylabel = sharey, xlabel, ylabel
        # inches above the panels: the figure's title, the abbreviations, the first row's panel titles
        head = 0.42 + (0.2 if legend_line(self.short) else 0) + 0.15 * title_lines
        foot = bottom + 0.25 * legend_rows  # inches below: the bottom row's tick and axis labels, the legend
        width, height = size[0] * self.cols + 0.75, size[1] * self.rows + head + foot
        self.fig, axes = plt.subplots(self.rows, self.cols, figsize=(width, height), squeeze=False)
        self.fig.subplots_adjust(left=0.65 / width, right=1 - 0.15 / width, bottom=foot / height, top=1 - head / height,
                                 hspace=0.6, wspace=0.08 if sharey else 0.28)
        self.height, self.legend_bottom = height, 0.08 / height
        for ax in axes.flat[self.shown :]:
            ax.set_visible(False)  # no empty panels
        self.axes = list(axes.flat[: self.shown])
        cut = f" (first {MAX_PANELS} of {n} conditions)" if n > MAX_PANELS else ""
        self.fig.suptitle(title + cut, fontsize=10, y=1 - 0.1 / height, va="top")
        if legend_line(self.short):
            self.fig.text(0.5, 1 - 0.36 / height, "panels: " + legend_line(self.short), ha="center", va="top", fontsize=LABEL, color="#444")

    def title(self, ax, key: dict, extra: str = "") -> None:
        ax.set_title(brief(key, self.short, per_line=2) + (f"\n{extra}" if extra else ""), fontsize=TITLE)

    def legend(self, handles=None, labels=None, ncol: int | None = None) -> None:
        """One legend for the figure, under the panels (outside every panel's data)."""
        if handles is None:
            seen: dict[str, object] = {}
            for ax in self.axes:
                for h, lab in zip(*ax.get_legend_handles_labels()):
                    seen.setdefault(lab, h)
            labels, handles = list(seen), list(seen.values())
        if handles:
            self.fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, self.legend_bottom), ncol=ncol or min(len(handles), 6),
                            fontsize=LABEL, frameon=False, handlelength=1.6, columnspacing=1.4)

    def finish(self) -> None:
        """The same ranges on every panel, and ticks and labels on the outer ones."""
        from matplotlib.ticker import AutoLocator, MaxNLocator

        def union(get):
            lims = np.array([get(ax) for ax in self.axes], dtype=float)
            return lims[:, 0].min(), lims[:, 1].max()

        xlim = union(lambda ax: ax.get_xlim())
        ylim = union(lambda ax: ax.get_ylim()) if self.sharey else None
        for i, ax in enumerate(self.axes):
            ax.minorticks_off()
            for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
                if scale == "linear" and type(axis.get_major_locator()) is AutoLocator:  # not ticks a figure placed itself
                    axis.set_major_locator(MaxNLocator(5))
            ax.set_xlim(xlim)
            if ylim is not None:
                ax.set_ylim(ylim)
            bottom, left = i + self.cols >= self.shown, i % self.cols == 0
            ax.tick_params(labelsize=TICK, labelbottom=bottom, labelleft=left or not self.sharey)
            if bottom and self.xlabel:
                ax.set_xlabel(self.xlabel, fontsize=LABEL)
            if left and self.ylabel:
                ax.set_ylabel(self.ylabel, fontsize=LABEL)


def save(fig, out: Path, name: str, tight: bool = True) -> list[Path]:
    """Save `fig` as `out`/`name`.png and .svg and close it. `tight`: crop to the drawn extent (one more
    draw pass; `Panels` figures have a fixed layout and pass False)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for p in paths:
        fig.savefig(p, dpi=DPI, bbox_inches="tight" if tight else None)
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
    p = Panels(len(groups), "Deployment-probe class scores and linear decodability along training (median line, IQR band over runs; dotted: phase change)",
               by, xlabel="training step", ylabel="score / accuracy (0-1)", legend_rows=2)
    for ax, (key, g) in zip(p.axes, groups):
        steps = np.asarray(g.traj_step.iloc[0])
        for c in CLASSES:
            _band(ax, steps, np.array(g[f"traj_deploy_score_{c}"].tolist(), dtype=float), COLOURS[c], f"score {c}")
        for d in ("situation", "situation_x_state", "base_objective"):
            if f"traj_decode_{d}" in g:
                _band(ax, steps, np.array(g[f"traj_decode_{d}"].tolist(), dtype=float), COLOURS[d], f"decodes {d}")
        _phase_lines(ax, g)
        ax.set_ylim(-0.02, 1.02)
        p.title(ax, key, f"n={len(g)}")
    p.legend(ncol=4)
    p.finish()
    return save(p.fig, out, "trajectories", tight=False)


def _phase_lines(ax, g: pd.DataFrame) -> None:
    steps, phases = np.asarray(g.traj_step.iloc[0]), np.asarray(g.traj_phase.iloc[0])
    for k in np.flatnonzero(phases[1:] != phases[:-1]):
        ax.axvline(steps[k], color="k", lw=0.5, ls=":")


def event_times(runs: pd.DataFrame, by: list[str], out: Path, threshold: float = 0.9, situation: str = "situation") -> list[Path]:
    """Histograms of the step at which the situation became decodable and the objective generalised (C1).
    A panel whose runs reached neither event says so in words (no empty axes)."""
    events = runs[["run_id", *by, "traj_step"]].merge(path_events(runs, threshold=threshold, situation=situation), on="run_id")
    groups = list(_groups(events, by))
    p = Panels(len(groups), f"When the situation is known ({situation} decodable >= {SITUATION_THRESHOLD}) vs when the objective generalises (runs per step bin)",
               by, xlabel="training step", ylabel="runs", sharey=False)
    series = (("sa_step", COLOURS["situation"], "situation known"), ("objective_step", COLOURS["internal"], "objective generalises"))
    for ax, (key, g) in zip(p.axes, groups):
        steps = np.asarray(g.traj_step.iloc[0], dtype=float)
        edges = np.concatenate([steps - 0.5, [steps[-1] + 0.5]]) if len(steps) < 60 else np.linspace(steps[0], steps[-1], 31)
        counts = []
        for col, colour, label in series:
            v = g[col].dropna()
            counts.append(len(v))
            ax.hist(v, bins=edges, color=colour, alpha=0.55, label=label)
        if not any(counts):
            ax.text(0.5, 0.5, f"neither event in\nany of {len(g)} runs", ha="center", va="center", transform=ax.transAxes, fontsize=TITLE, color="#555")
        p.title(ax, key, f"known {counts[0]}/{len(g)} · generalises {counts[1]}/{len(g)}")
    p.legend([plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.55) for _, c, _ in series], [lab for _, _, lab in series])
    p.finish()
    return save(p.fig, out, "event_times", tight=False)


def disagreement_matrices(runs: pd.DataFrame, by: list[str], out: Path, cut: float = CLUSTER_CUT) -> list[Path]:
    """Pairwise disagreement of the final functions on the probe inputs, runs sorted by cluster (C); one
    colour scale for every panel, one colour bar."""
    groups = list(_groups(runs, by))
    mats = [disagreement(decision_matrix(g.decisions, int(g.n_decisions.iloc[0]))) for _, g in groups[:MAX_PANELS]]
    top = max(0.05, max(float(d.max()) for d in mats))
    p = Panels(len(groups), "Pairwise disagreement of final functions on probe inputs (share of probe decisions that differ; runs sorted by cluster)",
               by, size=(2.8, 2.5), sharey=False, legend_rows=0)
    im = None
    for ax, (key, g), d in zip(p.axes, groups, mats):
        lab = clusters(d, cut)
        order = np.argsort(lab, kind="stable")
        im = ax.imshow(d[np.ix_(order, order)], vmin=0, vmax=top, cmap="viridis", interpolation="nearest")
        p.title(ax, key, f"{lab.max() + 1} clusters of {len(g)} runs")
        ax.set_xticks([])
        ax.set_yticks([])
    p.finish()
    p.fig.subplots_adjust(right=0.9)
    bar = p.fig.add_axes((0.92, 0.3, 0.012, 0.4))
    p.fig.colorbar(im, cax=bar).ax.tick_params(labelsize=TICK)
    bar.set_ylabel("disagreement", fontsize=LABEL)
    return save(p.fig, out, "disagreement", tight=False)


def gains(curves: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """Loss gain per step of every head along training, median and IQR over runs (C2); one colour per
    head and phase in every panel."""
    groups = list(_groups(curves, by))
    keys = list(dict.fromkeys(zip(curves["head"], curves["phase"])))
    palette = plt.get_cmap("tab10")
    colour = {k: palette(i % 10) for i, k in enumerate(keys)}
    p = Panels(len(groups), "Loss gain per step by head and phase (C2: does the proxy's return diminish sooner?), median and IQR over runs",
               by, xlabel="training step", ylabel="loss gain per step", legend_rows=math.ceil(len(keys) / 3))
    for ax, (key, g) in zip(p.axes, groups):
        for (head, phase), h in g.groupby(["head", "phase"], sort=False):
            c = colour[(head, phase)]
            ax.plot(h.step, h.gain_per_step.clip(lower=1e-7), color=c, lw=1.2, label=f"{head} ({phase})")
            ax.fill_between(h.step, h.gain_low.clip(lower=1e-7), h.gain_high.clip(lower=1e-7), color=c, alpha=0.2, lw=0)
        ax.set_yscale("log")
        p.title(ax, key)
    p.legend(ncol=3)
    p.finish()
    return save(p.fig, out, "gains", tight=False)


def stability(curves: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """(D) cluster agreement with the final clusters and (E) how well step t predicts the final verdict."""
    groups = list(_groups(curves, by))
    p = Panels(len(groups), "Cluster stability and final-verdict prediction along training", by, xlabel="training step", ylabel="ARI / accuracy")
    for ax, (key, g) in zip(p.axes, groups):
        ax.plot(g.step, g.ari_with_final, color="#1f77b4", label="ARI of the clusters at step t with the final ones")
        ax.plot(g.step, g.accuracy, color="#d62728", label="accuracy predicting the final verdict from step t")
        ax.plot(g.step, g.base_rate, color="#d62728", ls=":", lw=0.8, label="base rate (the commonest final verdict)")
        low = np.nanmin(np.asarray(g.ari_with_final, dtype=float), initial=0.0)  # ARI goes below 0 for worse-than-chance agreement
        ax.set_ylim(min(-0.05, low - 0.05), 1.05)
        p.title(ax, key)
    p.legend(ncol=3)
    p.finish()
    return save(p.fig, out, "stability", tight=False)


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
