"""The paths analysis of a results folder in one call: every table of training paths and path
dependence, written as CSV, and the figures, written as PNG and SVG. The CLI's `paths` prints it.

    from deceptionlab.report.paths import analyse_paths
    tables = analyse_paths("results/paths")          # dict of DataFrames
    tables["path_dependence"][["curriculum", "regime"]]
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..measure import barrier_summary, class_paths, gain_curves, loss_barriers, path_summary, returns_summary, sensitivity
from ..measure.path_dependence import path_dependence_and_curves
from ..sweep import Store, load
from . import figures

TABLES = ("events", "returns", "classes", "path_dependence", "sensitivity", "barriers", "curves", "gains")


def analyse_paths(results: str | Path, out: str | Path | None = None, *, threshold: float = 0.9, situation: str | None = None, barrier_pairs: int = 32, plots: bool = True, runs: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Read a results folder and return {table name: DataFrame} (see TABLES); write each table as CSV
    and, with `plots`, the figures into `out` (default: <results>/paths). `situation` names the
    decodable whose linear decodability means "the model knows its situation" (C1; default:
    `default_situation`). `runs`: the folder's runs when already loaded."""
    results = Path(results)
    runs = load(results) if runs is None else runs
    store = Store(results)
    by = condition_axes(store, runs)
    situation = situation or default_situation(runs)
    out = Path(out) if out is not None else results / "paths"
    tables = {
        "events": path_summary(runs, by, threshold=threshold, situation=situation),
        "returns": returns_summary(runs, by),
        "classes": class_paths(runs, by, threshold=threshold, situation=situation),
        "path_dependence": None,  # with "curves", below, in one pass
        "sensitivity": sensitivity(runs, by) if by != ["condition"] else pd.DataFrame(),
        "curves": None,
        "gains": gain_curves(runs, by),
    }
    tables["path_dependence"], tables["curves"] = path_dependence_and_curves(runs, by)
    pairs = loss_barriers(runs, store.weights(runs.run_id), by, pairs=barrier_pairs)
    tables["barriers"] = barrier_summary(pairs, by)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False)
    if plots:
        figs = out / "figures"
        figures.trajectories(runs, by, figs)
        figures.event_times(runs, by, figs, threshold=threshold, situation=situation)
        figures.disagreement_matrices(runs, by, figs)
        figures.gains(tables["gains"], by, figs)
        figures.stability(tables["curves"], by, figs)
    return tables


def default_situation(runs: pd.DataFrame) -> str:
    """The decodable that means "knows its situation": the situation combined with the state where the
    world has one (a raw cue bit is linearly readable from an untrained trunk), else the situation."""
    return "situation_x_state" if "traj_decode_situation_x_state" in runs else "situation"


def condition_axes(store: Store, runs: pd.DataFrame) -> list[str]:
    """The columns that name a condition: the sweep's axes, or `condition` when it has none."""
    return [a for a in store.axes() if a in runs.columns] or ["condition"]
