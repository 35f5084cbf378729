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


# -- pooled estimates: how the claims combine conditions (docs/claims.md) ------------------------------
BOOT_REPS = 2000


def bootstrap_mean(x: np.ndarray, seed: int, reps: int = BOOT_REPS) -> tuple[float, float]:
    """95% percentile interval of the mean of x over `reps` resamples of its entries (runs)."""
    x = np.asarray(x, float)
    if not len(x):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (reps, len(x)))].mean(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def stratified_difference(strata: list[tuple[np.ndarray, np.ndarray]], seed: int = 0, reps: int = BOOT_REPS) -> tuple[float, float, float]:
    """The pooled difference of means over strata: sum_s w_s (mean(a_s) - mean(b_s)) / sum_s w_s with
    w_s = len(a_s) + len(b_s) (the runs the stratum holds), and its 95% percentile bootstrap interval
    (each array resampled within its stratum, `reps` times, numpy.random.default_rng(seed)). A stratum
    missing either side is left out; NaNs are dropped. Returns (estimate, low, high); NaNs without strata.

    Written here rather than taken from scipy.stats.bootstrap: that resamples one sample (or paired
    ones), not several independent groups within strata."""
    kept = []
    for a, b in strata:
        a, b = np.asarray(a, float), np.asarray(b, float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) and len(b):
            kept.append((a, b))
    if not kept:
        return (float("nan"),) * 3
    w = np.array([len(a) + len(b) for a, b in kept], float)
    w = w / w.sum()
    est = float(sum(wi * (a.mean() - b.mean()) for wi, (a, b) in zip(w, kept)))
    rng = np.random.default_rng(seed)
    boots = np.zeros(reps)
    for wi, (a, b) in zip(w, kept):
        boots += wi * (a[rng.integers(0, len(a), (reps, len(a)))].mean(1) - b[rng.integers(0, len(b), (reps, len(b)))].mean(1))
    return est, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def fisher_pooled(rhos: np.ndarray, ns: np.ndarray) -> tuple[float, float, float]:
    """Spearman correlations of several independent samples pooled by Fisher's z, weighted by n - 3, with
    the 95% interval of the pooled z (variance 1.06 / sum(n - 3), Fieller et al.'s for Spearman) mapped
    back. Samples with n < 4 or a NaN rho are left out. Returns (rho, low, high); NaNs when none is left."""
    rhos, ns = np.asarray(rhos, float), np.asarray(ns, float)
    ok = np.isfinite(rhos) & (ns >= 4)
    if not ok.any():
        return (float("nan"),) * 3
    z = np.arctanh(np.clip(rhos[ok], -0.999999, 0.999999))
    w = ns[ok] - 3
    zbar, half = float(np.sum(w * z) / w.sum()), Z95 * float(np.sqrt(1.06 / w.sum()))
    return float(np.tanh(zbar)), float(np.tanh(zbar - half)), float(np.tanh(zbar + half))
