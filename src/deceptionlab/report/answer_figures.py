"""The report's answer figures: verdict shares per condition as small multiples (95% Wilson intervals),
and the per-cell behaviour heatmap (condition x probe cell, mean agreement with each class's template).
Each saved as PNG and SVG (`figures.save`); both fixed (no randomness), so the report's first screen is
the same every time it is written from the same runs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.scoring import VERDICTS
from ..measure import frequencies
from ..measure.tidy import cells as tidy_cells
from .figures import COLOURS, LABEL, MAX_PANELS, TICK, Panels, brief, legend_line, plt, save, short_names

VERDICT_COLOURS = {**COLOURS, "mixed": "#888888", "unfit": "#bbbbbb"}


def _conditions(runs: pd.DataFrame, by: list[str]) -> list[tuple[dict, pd.DataFrame]]:
    sort = ["condition_index"] if "condition_index" in runs else by
    return [(dict(zip(by, k if isinstance(k, tuple) else (k,))), g) for k, g in runs.sort_values(sort).groupby(by, sort=False, dropna=False)]


def verdict_shares(runs: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """One panel per condition (at most MAX_PANELS): the share of runs given each verdict, a bar with its 95%
    Wilson interval; each bar named on the x axis (no legend over the data)."""
    conditions = _conditions(runs, by)
    groups = conditions[:MAX_PANELS]
    freq = frequencies(runs, by=by)
    p = Panels(len(conditions), "Verdict shares per condition, % of runs with 95% Wilson intervals", by, size=(3.1, 2.0), ylabel="runs (%)", legend_rows=0, bottom=0.9)
    x = np.arange(len(VERDICTS))
    for ax, (key, g) in zip(p.axes, groups):
        f = freq
        for a, v in key.items():
            f = f[f[a] == v]
        f = f.set_index("verdict").reindex(list(VERDICTS))
        share = f.p.to_numpy(float)
        err = np.vstack([share - f.low.to_numpy(float), f.high.to_numpy(float) - share])
        ax.bar(x, 100 * share, color=[VERDICT_COLOURS.get(v, "#999") for v in VERDICTS], yerr=100 * err, capsize=2, error_kw={"lw": 0.8})
        p.title(ax, key, f"n={len(g)}")
        ax.set_ylim(0, 105)
        ax.set_xticks(x, list(VERDICTS), rotation=40, ha="right", rotation_mode="anchor")
        ax.grid(axis="y", color="#eee", lw=0.6)
        ax.set_axisbelow(True)  # the grid behind the bars
    p.finish()
    p.fig.subplots_adjust(hspace=0.75)  # room for the rotated verdict names under each row
    return save(p.fig, out, "verdict_shares", tight=False)


def _two(v: float) -> str:
    """An agreement in two digits: 1, .95, .5, 0."""
    return "1" if v >= 0.995 else "0" if v < 0.005 else f"{v:.2f}".lstrip("0").rstrip("0")


def cell_agreement(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per condition, probe cell and class: the mean agreement of the runs' decisions with the class's
    template on that cell (`measure.tidy.cells`), and the cell's size (inputs)."""
    long = tidy_cells(runs)
    keyed = long.merge(runs[["run_id", *by]], on="run_id")
    out = keyed.groupby([*by, "cell", "class"], sort=False, dropna=False).agg(agreement=("agreement", "mean"), cell_size=("cell_size", "first"))
    return out.reset_index()


def cell_heatmap(runs: pd.DataFrame, by: list[str], out: Path) -> list[Path]:
    """One heatmap per class: rows the conditions (at most MAX_PANELS), columns the probe cells, colour the
    mean agreement with that class's template (0 to 1, the value written in each square)."""
    table = cell_agreement(runs, by)
    conds = [key for key, _ in _conditions(runs, by)][:MAX_PANELS]
    classes = list(dict.fromkeys(table["class"]))
    cells = list(dict.fromkeys(table.cell))
    short = short_names(by)
    labels = [brief(k, short) for k in conds]
    cols = min(2, len(classes))
    rows = math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols + 1.2, rows * (1.6 + 0.26 * len(conds))), squeeze=False, sharey=True)
    image = None
    for ax in axes.flat[len(classes):]:
        ax.set_visible(False)  # no empty panels
    for panel, (ax, cls) in enumerate(zip(axes.flat, classes)):
        t = table[table["class"] == cls]
        grid = np.full((len(conds), len(cells)), np.nan)
        for i, key in enumerate(conds):
            row = t
            for a, v in key.items():
                row = row[row[a] == v]
            values = row.set_index("cell").agreement.reindex(cells).to_numpy(float)
            grid[i] = values
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        if len(conds) * len(cells) <= 400:
            for (i, j), v in np.ndenumerate(grid):
                if v == v:
                    ax.text(j, i, _two(v), ha="center", va="center", fontsize=TICK, color="white" if v < 0.6 else "black")
        ax.set_title(f"agreement with {cls}", fontsize=9)
        last_row = panel + cols >= len(classes)
        ax.set_xticks(range(len(cells)), [c.replace("training/", "train/").replace("deployment/", "deploy/") if last_row else "" for c in cells],
                      rotation=40, ha="right", rotation_mode="anchor", fontsize=TICK)
        ax.set_yticks(range(len(conds)), labels, fontsize=TICK)
        if last_row:
            ax.set_xlabel("probe cell (situation/spec/region)", fontsize=LABEL)
    abbreviations = legend_line(short)
    fig.suptitle("Behaviour per probe cell: mean agreement of the runs with each class's template (0: never, 1: every decision)"
                 + (f"\nconditions: {abbreviations}" if abbreviations else ""), fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    bar = fig.add_axes((0.935, 0.3, 0.012, 0.45))
    fig.colorbar(image, cax=bar).ax.tick_params(labelsize=TICK)
    bar.set_ylabel("agreement", fontsize=LABEL)
    return save(fig, out, "cell_heatmap")
