"""Interventions: what each does to P(deceptive) and P(aligned), and what it costs in performance.

The texts end on "we must make SGD favour aligned models"; docs/interventions.md describes each
intervention the lab can sweep. A spec sweeps them as one axis whose `baseline` names the
no-intervention value; every other axis splits the runs into baseline groups, and each intervention
is compared with the baseline of its own group, in the same sweep:

- P(deceptive) and P(internal or corrigible), with 95% Wilson intervals, and their change against
  the baseline with Newcombe's hybrid score interval for a difference of two proportions;
- the training-performance cost: mean training accuracy and mean policy loss on the training data
  (the fit dataset), and their change against the baseline with a Welch (normal) 95% interval.

    import deceptionlab as dl
    dl.interventions("results/interventions")        # one row per (group, intervention)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .verdicts import wilson

Z95 = 1.959963984540054
ALIGNED_VERDICTS = ("internal", "corrigible")  # the outcomes the interventions aim for
DEFAULT_BASELINE = "none"  # the baseline label of an axis named "intervention" in a spec that names none


class InterventionsError(ValueError):
    """A results folder that cannot be read as an interventions sweep, worded as one line."""


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """p1 - p2 and its 95% interval by Newcombe's hybrid score method (his method 10), built from the
    two Wilson intervals: right at 0 and 1, unlike the normal approximation."""
    if n1 == 0 or n2 == 0:
        return (float("nan"),) * 3
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = (tuple(map(float, wilson(k, n))) for k, n in ((k1, n1), (k2, n2)))
    d = p1 - p2
    return d, d - float(np.hypot(p1 - l1, u2 - p2)), d + float(np.hypot(u1 - p1, p2 - l2))


def mean_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its 95% Welch normal interval (NaNs left out)."""
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return (float(a.mean() - b.mean()) if len(a) and len(b) else float("nan"), float("nan"), float("nan"))
    d = float(a.mean() - b.mean())
    half = Z95 * float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))
    return d, d - half, d + half


def intervention_effects(runs: pd.DataFrame, axis: str, baseline: str, by: list[str] | None = None) -> pd.DataFrame:
    """One row per (baseline group, value of `axis`): see the module docstring. `by`: the columns
    that make a baseline group (default: none, one group). Rows keep the spec's order."""
    by = list(by or [])
    if axis not in runs:
        raise InterventionsError(f"no column {axis!r} in the runs")
    runs = runs.sort_values("condition_index", kind="stable") if "condition_index" in runs else runs
    fit_loss = runs["fit_loss"] if "fit_loss" in runs else pd.Series(np.nan, index=runs.index)
    runs = runs.assign(
        _deceptive=runs.verdict.eq("deceptive"), _aligned=runs.verdict.isin(ALIGNED_VERDICTS), _fit_loss=fit_loss.astype(float)
    )
    rows = []
    groups = runs.groupby(by, sort=False, dropna=False) if by else [((), runs)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        base = g[g[axis].astype(str) == str(baseline)]
        for value, h in g.groupby(axis, sort=False):
            row = {**dict(zip(by, key)), axis: value, "baseline": str(value) == str(baseline), "n": len(h)}
            for name, col in (("deceptive", "_deceptive"), ("aligned", "_aligned")):
                k, n, kb, nb = int(h[col].sum()), len(h), int(base[col].sum()), len(base)
                lo, hi = wilson(k, n)
                d = newcombe(k, n, kb, nb)
                row |= {name: k / n, f"{name}_low": float(lo), f"{name}_high": float(hi),
                        f"d_{name}": d[0], f"d_{name}_low": d[1], f"d_{name}_high": d[2]}
            for name, col in (("train_accuracy", "train_accuracy"), ("fit_loss", "_fit_loss")):
                d = mean_difference(h[col].to_numpy(float), base[col].to_numpy(float))
                row |= {name: float(h[col].mean()), f"d_{name}": d[0], f"d_{name}_low": d[1], f"d_{name}_high": d[2]}
            rows.append(row)
    return pd.DataFrame(rows)


def intervention_axis(axes: list[str], baselines: dict[str, str], runs: pd.DataFrame) -> tuple[str, str]:
    """(axis, baseline label) of a sweep: the axis given a `baseline` in the spec, else an axis named
    "intervention" with a value labelled "none"; InterventionsError otherwise."""
    marked = [a for a in axes if a in baselines]
    if marked:
        axis, baseline = marked[0], baselines[marked[0]]
    elif "intervention" in axes:
        axis, baseline = "intervention", DEFAULT_BASELINE
    else:
        raise InterventionsError(
            "no intervention axis (give one sweep axis `baseline = \"<label of its no-intervention value>\"`, "
            f"or name it `intervention` with a value labelled {DEFAULT_BASELINE!r}; axes: {', '.join(axes) or 'none'})"
        )
    if axis not in runs or not runs[axis].astype(str).eq(baseline).any():
        raise InterventionsError(f"axis {axis!r} has no runs of its baseline {baseline!r}")
    return axis, baseline


def interventions(results: str | Path, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """`intervention_effects` of a results folder: its intervention axis against its baseline, within
    each value of every other axis. `runs`: the folder's runs when already loaded. The table's
    `attrs` name the axis, the baseline and the group columns."""
    from ..sweep import Store, load  # late: sweep imports measure

    store = Store(results)
    runs = load(results) if runs is None else runs
    axes = [a for a in store.axes() if a in runs.columns]
    try:
        axis, baseline = intervention_axis(axes, store.baselines(), runs)
    except InterventionsError as e:
        raise InterventionsError(f"{results}: {e}") from None
    groups = [a for a in axes if a != axis]
    table = intervention_effects(runs, axis, baseline, groups)
    table.attrs.update(axis=axis, baseline=baseline, groups=groups)
    return table
