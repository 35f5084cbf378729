"""Outcomes: P_SGD(class) per condition, with 95% Wilson intervals, from a results DataFrame."""

from __future__ import annotations

import pandas as pd

from ..core.scoring import VERDICTS
from ..core.stats import wilson


def frequencies(runs: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """Long table: one row per (condition, verdict) with count, n, p and the 95% Wilson interval.

    `by` names the column, or the columns, that identify a condition (default: the `condition` label);
    conditions keep the spec's order.
    """
    by = [by] if isinstance(by, str) else list(by or ["condition"])
    missing = [c for c in by if c not in runs.columns]
    if missing:
        raise ValueError(f"frequencies: no column {', '.join(map(repr, missing))} in the runs (columns include: {', '.join(c for c in runs.columns if not c.startswith('traj_'))[:300]})")
    cols = [*by, "verdict", "count", "n", "p", "low", "high"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    sort = ["condition_index"] if "condition_index" in runs else by
    keys = runs.sort_values(sort)[by].drop_duplicates()
    counts = runs.groupby(by + ["verdict"], dropna=False).size()
    rows = []
    for key in keys.itertuples(index=False):
        n = int(sum(counts.get((*key, v), 0) for v in VERDICTS))
        for v in VERDICTS:
            k = int(counts.get((*key, v), 0))
            lo, hi = wilson(k, n)
            rows.append({**dict(zip(by, key)), "verdict": v, "count": k, "n": n, "p": k / n, "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows, columns=cols)
