"""The figures of training paths and path dependence, drawn from a frame of runs and the tables of
`measure.paths.path_tables` (`deceptionlab.analyse_paths` computes, writes and draws in one call)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import figures


def path_figures(runs: pd.DataFrame, tables: dict[str, pd.DataFrame], by: list[str], out: str | Path, *, threshold: float, situation: str) -> Path:
    """Draw the paths figures (PNG and SVG) into `out` and return it."""
    out = Path(out)
    figures.trajectories(runs, by, out)
    figures.event_times(runs, by, out, threshold=threshold, situation=situation)
    figures.disagreement_matrices(runs, by, out)
    figures.gains(tables["gains"], by, out)
    figures.stability(tables["curves"], by, out)
    return out
