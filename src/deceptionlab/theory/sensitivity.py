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


FACTORS = (0.9, 0.75, 0.5, 0.25, 0.1, 0.01, 1.1, 1.25, 1.5, 2.0, 4.0, 10.0, 100.0)  # nearest changes first, each side


def reversals(params, predict: Callable[[object], dict[str, float]], outcome: str = "deceptive", exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """Which single-parameter changes reverse the conclusion "`outcome` is the most likely": per
    parameter, the smallest multiplicative change downwards and upwards (from FACTORS, within the
    field's bounds) after which another outcome is the most likely, and which. NaN where no tried
    change reverses it. Under the defaults this says what the texts' conclusion hangs on."""
    def leader(p) -> str:
        out = predict(p)
        return max(out, key=out.get)

    base = leader(params)
    rows = []
    for f in dataclasses.fields(params):
        if f.name in exclude:
            continue
        v = getattr(params, f.name)
        row = {"param": f.name, "value": v, "leader": base, "down_factor": math.nan, "down_leader": "", "up_factor": math.nan, "up_leader": ""}
        for side, factors in (("down", [x for x in FACTORS if x < 1]), ("up", [x for x in FACTORS if x > 1])):
            for x in factors:
                try:
                    p = checked(params, **{f.name: v * x})
                except ValueError:  # outside the field's bounds: no further on this side
                    break
                new = leader(p)
                if new != base:
                    row[f"{side}_factor"], row[f"{side}_leader"] = x, new
                    break
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["leader"] = base
    out.attrs["outcome"] = outcome
    return out
