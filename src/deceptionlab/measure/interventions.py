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

import numpy as np
import pandas as pd

from ..core.stats import mean_difference, newcombe, wilson

ALIGNED_VERDICTS = ("internal", "corrigible")  # the outcomes the interventions aim for
DEFAULT_BASELINE = "none"  # the baseline label of an axis named "intervention" in a spec that names none


class InterventionsError(ValueError):
    """A results folder that cannot be read as an interventions sweep, worded as one line."""


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


def interventions(runs: pd.DataFrame, axes: list[str], baselines: dict[str, str]) -> pd.DataFrame:
    """`intervention_effects` of a sweep's runs: its intervention axis against its baseline, within each
    value of every other axis. `axes`, `baselines`: the spec's sweep axes and their baseline labels
    (`Store.axes()`, `Store.baselines()`). The table's `attrs` name the axis, the baseline and the group
    columns."""
    axes = [a for a in axes if a in runs.columns]
    axis, baseline = intervention_axis(axes, baselines, runs)
    groups = [a for a in axes if a != axis]
    table = intervention_effects(runs, axis, baseline, groups)
    table.attrs.update(axis=axis, baseline=baseline, groups=groups)
    return table
