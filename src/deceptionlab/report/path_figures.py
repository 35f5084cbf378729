"""The figures of training paths and path dependence, drawn from a frame of runs and the tables of
`measure.paths.path_tables` (`deceptionlab.analyse_paths` computes, writes and draws in one call)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import figures
from .drawing import Job, draw


def path_figure_jobs(runs: pd.DataFrame, tables: dict[str, pd.DataFrame], by: list[str], out: str | Path, *, threshold: float,
                     situation: str) -> list[Job]:
    """The paths figures as drawing jobs (`drawing.Job`: PNG and SVG into `out`)."""
    out = Path(out)
    return [
        Job("trajectories", lambda: figures.trajectories(runs, by, out), out, (runs, by)),
        Job("event_times", lambda: figures.event_times(runs, by, out, threshold=threshold, situation=situation), out, (runs, by, threshold, situation)),
        Job("disagreement", lambda: figures.disagreement_matrices(runs, by, out), out, (runs, by)),
        Job("gains", lambda: figures.gains(tables["gains"], by, out), out, (tables["gains"], by)),
        Job("stability", lambda: figures.stability(tables["curves"], by, out), out, (tables["curves"], by)),
    ]


def path_figures(runs: pd.DataFrame, tables: dict[str, pd.DataFrame], by: list[str], out: str | Path, *, threshold: float, situation: str) -> Path:
    """Draw the paths figures (PNG and SVG) into `out`, only those whose inputs changed
    (`drawing.draw`), and return it."""
    draw(path_figure_jobs(runs, tables, by, out, threshold=threshold, situation=situation))
    return Path(out)
