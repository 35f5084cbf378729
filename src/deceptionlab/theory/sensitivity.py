"""Sensitivity: how much each prediction moves when one parameter moves by ±25%, the others fixed.

The texts' argument is a chain of qualitative "likelier"s; this table says which links carry it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pandas as pd

from ._fields import checked


def sensitivity(params, predict: Callable[[object], dict[str, float]], relative: float = 0.25, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per parameter: its value, the values tried (value * (1 ± relative), clipped to the
    field's bounds) and, per output of `predict`, `d_<output>` = prediction at the upper value minus
    at the lower one, and `slope_<output>` = that change over the change of the parameter (a central
    finite difference). A parameter at 0 has no relative neighbourhood: its row holds NaN.
    A stochastic `predict` should reuse its seed (common random numbers), so the differences are the
    parameter's effect and not Monte Carlo noise."""
    rows = []
    for f in dataclasses.fields(params):
        if f.name in exclude:
            continue
        v = getattr(params, f.name)
        lo = max(v * (1 - relative), f.metadata.get("lo", -math.inf))
        hi = min(v * (1 + relative), f.metadata.get("hi", math.inf))
        if f.metadata.get("lo_open") and lo <= f.metadata["lo"]:
            lo = v  # a one-sided difference where the lower value is not allowed
        row = {"param": f.name, "value": v, "low_value": lo, "high_value": hi}
        if hi > lo:
            down, up = predict(checked(params, **{f.name: lo})), predict(checked(params, **{f.name: hi}))
            for k in up:
                row[f"d_{k}"] = up[k] - down[k]
                row[f"slope_{k}"] = (up[k] - down[k]) / (hi - lo)
        rows.append(row)
    return pd.DataFrame(rows)
