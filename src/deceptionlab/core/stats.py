"""Intervals: one definition of each, and of how an interval is printed, for the whole lab."""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: two-sided 95% intervals."""


def wilson(k: int | np.ndarray, n: int | np.ndarray, z: float = Z95):
    """95% Wilson score interval for k successes in n trials: (low, high)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.where(k == 0, 0.0, np.clip(centre - half, 0, 1))  # exact at the ends, not 1 - 1e-17
    hi = np.where(k == n, 1.0, np.clip(centre + half, 0, 1))
    return lo, hi


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


def mean_interval(v: np.ndarray) -> tuple[float, float]:
    """The mean of v (NaNs left out) and the half-width of its 95% normal interval (NaN below 2 values)."""
    v = np.asarray(v, float)
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(Z95 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")


def share(p: float, low: float, high: float, percent: str = "%", digits: int = 0, missing: str = "n/a") -> str:
    """A share and its interval as the lab prints it: "42% (35-49)" (percent="" drops the sign)."""
    if p != p:
        return missing
    return f"{100 * p:.{digits}f}{percent} ({100 * low:.{digits}f}-{100 * high:.{digits}f})"


def interval(m: float, low: float, high: float, fmt: str = "+.2f", missing: str = "n/a") -> str:
    """A value and its interval: "+0.12 (+0.05 to +0.19)"; the value alone when the interval is missing."""
    if m != m:
        return missing
    return f"{m:{fmt}} ({low:{fmt}} to {high:{fmt}})" if low == low and high == high else f"{m:{fmt}}"
