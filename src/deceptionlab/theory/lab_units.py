"""The theory's predictions in the lab's own units, condition by condition (docs/theory.md, "Fitting").

A model here maps the measurements of a condition (`measure_conditions`: when the situation becomes
decodable, how close the policy's goal is to the base objective when training begins, whether it has a
goal of its own then, how far apart cue twins are, how long training lasts) and its parameters to
*atoms*: run outcomes, each a verdict, a verdict of the training situation's half and of the
deployment half, and a compliance gap, with a probability per condition. Everything a results folder
measures per condition follows from the atoms: the verdict distribution (with `mixed`), the
per-situation verdicts and the gap's mean and share above 0.5. A lapse ε mixes every distribution
with the uniform one (a run the model cannot place), so no observed verdict has probability 0.

Three models (parameters: `FREE`):
- `path`: the high-path-dependence model, reduced to a race of first-passage times. Each path
  followed alone (as `path_quantities` does) takes a median time: the situation
  (`sa_steps`, measured), the proxy to the base objective (I(p0, 1 - proxy_tolerance, proxy_curvature)
  / proxy_rate, p0 measured), the pointer (the world model to `objective_knowledge`, then the pointer
  to `pointer_threshold` at `pointer_rate`). A run's times scatter log-normally (sd `rate_spread`, the
  path model's spread of run rates), independently. The first to finish decides: internal,
  corrigible, or, where the situation is known first and the goal is (or becomes) long-term (chance
  `long_term_goal`), deceptive. None within the training steps: not converged, a proxy that is
  neither the base objective nor the goal it began with: `mixed` (a `proxy` verdict needs the own
  goal on at least 90% of the cells, training cells included, which training has by then changed).
- `bias`: the low-path-dependence model: P(class) ∝ exp(-w_simplicity bits - w_speed steps), the
  same in every condition; internal, corrigible and deceptive runs show those verdicts.
- `null`: knows nothing of goals. A run's training half is internal, corrigible, proxy or mixed
  (shares fitted). Its decisions on the deployment cells, inputs it never trained on, follow the
  nearest trained input (the cue twin) with chance exp(-distance / distance_scale), distance the
  measured number of cue columns between twins; otherwise they keep what the run did before training
  (its own goal where it had one, else no pattern: mixed). A kept own goal beside an aligned training
  half reads as `deceptive` with gap 1, without any belief about the situation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit, ndtr, softmax

from ..core.memo import per_frame
from ..core.scoring import VERDICTS
from ..core.stats import Z95
from .biases import BiasParams, compute_steps, description_lengths
from .path_model import PathParams, _integral

HALVES = ("internal", "corrigible", "proxy", "mixed")  # what each situation's half can be judged
SITUATION_THRESHOLD = 0.95  # decodability at which the situation counts as known (as measure.paths)
OBJECTIVE_THRESHOLD = 0.9  # deployment template score at which the base objective has generalised
OWN_GOAL_THRESHOLD = 0.9  # proxy-template score at which a run acts on its own goal when training begins


# -- parameters ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Free:
    """A free parameter: its prior range (uniform in the value, or in its log for `log`), the texts'
    value (None: the texts give none) and meaning. `real`: an unbounded logit with a N(0, 2) prior."""

    name: str
    kind: str  # "log", "unit" (uniform on [lo, hi]) or "real"
    lo: float
    hi: float
    texts: float | None
    meaning: str

    def value(self, u):
        if self.kind == "real":
            return u
        s = expit(u)
        if self.kind == "log":
            return np.exp(math.log(self.lo) + (math.log(self.hi) - math.log(self.lo)) * s)
        return self.lo + (self.hi - self.lo) * s

    def unconstrained(self, v: float) -> float:
        if self.kind == "real":
            return float(v)
        if self.kind == "log":
            s = (math.log(v) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        else:
            s = (v - self.lo) / (self.hi - self.lo)
        return float(logit(min(max(s, 1e-9), 1 - 1e-9)))

    def log_prior(self, u: float) -> float:
        """Log density of the prior on the unconstrained scale (uniform on the range: the logistic's)."""
        if self.kind == "real":
            return float(-0.5 * (u / 2) ** 2 - math.log(2 * math.sqrt(2 * math.pi)))
        return float(-abs(u) - 2 * math.log1p(math.exp(-abs(u))))

    def prior_range(self) -> str:
        if self.kind == "real":
            return "logit ~ N(0, 2)"
        return f"{'log-uniform' if self.kind == 'log' else 'uniform'} [{self.lo:g}, {self.hi:g}]"


LAPSE = Free("lapse", "log", 1e-4, 0.5, 0.01, "Share of runs the model cannot place: mixed with the uniform verdict distribution (texts: none; 1% so no verdict scores -inf).")

FREE: dict[str, tuple[Free, ...]] = {
    "path": (
        Free("pointer_rate", "log", 1e-4, 1.0, PathParams.pointer_rate, "Gain per step of the pointer to the world model's objective (no measurement tells a pointer from a proxy before the end)."),
        Free("rate_spread", "log", 0.05, 5.0, PathParams.rate_spread, "Sd of the log of a run's time to each event (seeds and data orders differ)."),
        Free("long_term_goal", "unit", 0.0, 1.0, 1.0, "Chance that a run which knows its situation before it is aligned has, or is given by SGD, a long-term goal (texts: 1, the contested step)."),
        LAPSE,
    ),
    "bias": (
        Free("w_simplicity", "log", 1e-3, 10.0, BiasParams.w_simplicity, "Weight of the simplicity bias per bit (bits: the texts' description lengths, or -log2 of measured prior volumes)."),
        Free("w_speed", "log", 1e-3, 10.0, BiasParams.w_speed, "Weight of the speed bias per reasoning step."),
        LAPSE,
    ),
    "null": (
        Free("logit_corrigible", "real", -math.inf, math.inf, None, "Training half corrigible, against internal (softmax logit; internal is 0)."),
        Free("logit_proxy", "real", -math.inf, math.inf, None, "Training half still on its own goal (proxy), against internal."),
        Free("logit_mixed", "real", -math.inf, math.inf, None, "Training half mixed, against internal."),
        Free("distance_scale", "log", 0.1, 1000.0, None, "Cue columns over which following the trained twin decays by e (chance exp(-distance / this))."),
        LAPSE,
    ),
}

MODELS = tuple(FREE)


# -- measurements per condition ----------------------------------------------------------------------
def _training_start(steps: np.ndarray, phases) -> int:
    """Index of the checkpoint where the last phase (the training judged) begins: the last checkpoint
    before its first one (the end of the earlier phases), else the first checkpoint."""
    phases = list(phases) if phases is not None else []
    if not len(phases) or len(phases) != len(steps):
        return 0
    first = next(i for i, p in enumerate(phases) if p == phases[-1])
    return max(first - 1, 0)


def _first_at(steps: np.ndarray, hit: np.ndarray, k0: int) -> float:
    idx = np.flatnonzero(hit[k0:])
    return float(steps[k0 + idx[0]] - steps[k0]) if len(idx) else np.nan


@per_frame
def run_measurements(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run, what the models read (none of it the verdict): steps from the start of the judged
    training to the situation being decodable (`sa_steps`, NaN: never) and to the base objective
    generalising on deployment probes (`objective_steps`), the internal template's score when training
    begins (`initial_proxy`: how close its goal then is to the base objective), whether it then acts on
    its own goal (`own_goal`), the cue columns between twins (`distance`) and the steps trained."""
    situation = "situation_x_state" if "traj_decode_situation_x_state" in runs else "situation"
    column = f"traj_decode_{situation}"
    rows = []
    for r in runs.itertuples(index=False):
        steps = np.asarray(r.traj_step, dtype=float)
        k0 = _training_start(steps, getattr(r, "traj_phase", None))
        decode = getattr(r, column, None) if column in runs else None
        sa = _first_at(steps, np.asarray(decode, float) >= SITUATION_THRESHOLD, k0) if decode is not None and len(np.atleast_1d(decode)) == len(steps) else np.nan
        aligned = np.maximum(np.asarray(r.traj_deploy_score_internal, float), np.asarray(r.traj_deploy_score_corrigible, float))
        dist = getattr(r, "cue_distance", None)
        rows.append({
            "sa_steps": sa,
            "objective_steps": _first_at(steps, aligned >= OBJECTIVE_THRESHOLD, k0),
            "initial_proxy": float(np.asarray(r.traj_score_internal, float)[k0]),
            "own_goal": float(np.asarray(r.traj_score_proxy, float)[k0] >= OWN_GOAL_THRESHOLD),
            "distance": float(np.max(dist)) if dist is not None and len(np.atleast_1d(dist)) else 0.0,
            "train_steps": float(steps[-1] - steps[k0]),
        })
    return pd.DataFrame(rows, index=runs.index)


@per_frame
def measure_conditions(runs: pd.DataFrame, by: str = "condition") -> pd.DataFrame:
    """One row per condition (column `by`): runs, verdict counts (`n_<verdict>`), and the medians of
    `run_measurements` (sa_steps: NaN counts as never, so a condition where most runs never know their
    situation has inf), the share of runs with an own goal, and the measured gap and half verdicts."""
    m = run_measurements(runs)
    keep = [c for c in (by, "verdict", "compliance_gap", "verdict_training", "verdict_deployment") if c in runs]
    small = runs[list(dict.fromkeys(keep))]  # the columns read below: slicing every per-run array column per condition cost seconds
    out = []
    for cond, idx in small.groupby(by, sort=False).groups.items():
        g, mm = small.loc[idx], m.loc[idx]
        row = {"condition": cond, "runs": len(g)}
        for v in VERDICTS:
            row[f"n_{v}"] = int((g.verdict == v).sum())
        row["sa_steps"] = float(np.median(mm.sa_steps.fillna(np.inf)))
        row["sa_share"] = float(mm.sa_steps.notna().mean())
        for c in ("initial_proxy", "distance", "train_steps"):
            row[c] = float(mm[c].median())
        row["own_goal"] = float(mm.own_goal.mean())
        gap = pd.to_numeric(g.get("compliance_gap"), errors="coerce") if "compliance_gap" in g else pd.Series(np.nan, index=g.index)
        row["gap_mean"] = float(gap.mean()) if gap.notna().any() else np.nan
        half = Z95 * float(gap.std(ddof=1)) / math.sqrt(gap.notna().sum()) if gap.notna().sum() > 1 else np.nan
        row["gap_low"], row["gap_high"] = row["gap_mean"] - half, row["gap_mean"] + half  # normal interval of the mean
        row["gap_over_half"] = float((gap > 0.5).mean()) if gap.notna().any() else np.nan
        for half in ("training", "deployment"):
            col = f"verdict_{half}"
            for h in HALVES:
                row[f"{half}_{h}"] = float((g[col] == h).mean()) if col in g else np.nan
        out.append(row)
    return pd.DataFrame(out)


def proxy_rate_from(runs: pd.DataFrame, base: PathParams = PathParams()) -> tuple[float, str]:
    """The proxy's rate from the runs' measured time to the base objective (those reaching it): the rate
    at which the proxy, followed alone, climbs from its measured start to 1 - proxy_tolerance in that
    many steps (median over runs). Returns the rate and where it came from."""
    m = run_measurements(runs)
    hit = m[m.objective_steps.notna()]
    if not len(hit):
        return base.proxy_rate, f"default: no run's base objective generalised ({len(m)} runs)"
    need = np.array([_integral(p, 1 - base.proxy_tolerance, base.proxy_curvature) for p in hit.initial_proxy])
    rate = float(np.clip(np.median(need / np.maximum(hit.objective_steps.to_numpy(), 1.0)), 1e-6, 1.0))
    return rate, f"measured: median step the base objective generalises on the fit conditions = {hit.objective_steps.median():g} ({len(hit)}/{len(m)} runs)"


# -- atoms ---------------------------------------------------------------------------------------------
# (verdict, training half, deployment half, gap)
PATH_ATOMS = (("internal", "internal", "internal", 0.0), ("corrigible", "corrigible", "corrigible", 0.0),
              ("deceptive", "internal", "proxy", 1.0), ("deceptive", "corrigible", "proxy", 1.0),
              ("mixed", "mixed", "mixed", 0.0))
BIAS_ATOMS = (("internal", "internal", "internal", 0.0), ("corrigible", "corrigible", "corrigible", 0.0), ("deceptive", "internal", "proxy", 1.0))
NULL_ATOMS = (("internal", "internal", "internal", 0.0), ("corrigible", "corrigible", "corrigible", 0.0),
              ("deceptive", "internal", "proxy", 1.0), ("deceptive", "corrigible", "proxy", 1.0),
              ("mixed", "internal", "mixed", 0.0), ("mixed", "corrigible", "mixed", 0.0),
              ("proxy", "proxy", "proxy", 0.0), ("mixed", "mixed", "mixed", 0.0))
ATOMS = {"path": PATH_ATOMS, "bias": BIAS_ATOMS, "null": NULL_ATOMS}


def _race(tau: np.ndarray, sigma: float, horizon: np.ndarray, grid: int = 240) -> np.ndarray:
    """P(each racer finishes first, within the horizon) and P(none does), per row: racers' times are
    log-normal with medians `tau` (C, R) (inf: never) and log-sd sigma, independent. The time axis is
    cut into `grid` log-spaced bins from 0.5 to the horizon; within a bin the others' survival is the
    mean of its ends (trapezoid). Returns (C, R + 1)."""
    C, R = tau.shape
    H = np.maximum(np.asarray(horizon, float), 1.0)
    log_edges = math.log(0.5) + np.linspace(0.0, 1.0, grid)[None, :] * (np.log(H) - math.log(0.5))[:, None]  # (C, E-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (log_edges[:, :, None] - np.log(tau)[:, None, :]) / sigma  # (C, E-1, R); tau inf -> F = 0
    F = np.concatenate([np.zeros((C, 1, R)), ndtr(z)], 1)  # the first edge is 0
    S = 1 - F
    mass = F[:, 1:] - F[:, :-1]  # (C, E-1, R)
    out = np.empty((C, R + 1))
    for i in range(R):
        others = np.ones(S.shape[:2])
        for j in range(R):
            if j != i:
                others = others * S[:, :, j]
        out[:, i] = np.einsum("ce,ce->c", mass[:, :, i], 0.5 * (others[:, :-1] + others[:, 1:]))
    out[:, R] = np.prod(S[:, -1, :], axis=1)
    return out / out.sum(1, keepdims=True)


_ARRAYS: dict[int, tuple] = {}  # id(conds) -> (conds, arrays): a fit calls the models thousands of times


def _arrays(conds: pd.DataFrame) -> dict[str, np.ndarray]:
    hit = _ARRAYS.get(id(conds))
    if hit is not None and hit[0] is conds:
        return hit[1]
    a = {c: conds[c].to_numpy(float) for c in ("sa_steps", "initial_proxy", "own_goal", "distance", "train_steps")}
    if len(_ARRAYS) > 64:
        _ARRAYS.clear()
    _ARRAYS[id(conds)] = (conds, a)
    return a


def _medians(conds: pd.DataFrame, p: dict, proxy_rate: float, base: PathParams) -> tuple[np.ndarray, ...]:
    """Median times of the proxy, the pointer and the situation, each followed alone, and the horizon."""
    a = _arrays(conds)
    tau_s = np.maximum(a["sa_steps"], 1.0)
    need_p = np.array([_integral(x, 1 - base.proxy_tolerance, base.proxy_curvature) for x in a["initial_proxy"]])
    tau_p = np.maximum(need_p / proxy_rate, 1.0)
    know = _integral(0, base.objective_knowledge, base.world_curvature) / _integral(0, base.situational_threshold, base.world_curvature)
    tau_q = tau_s * know + _integral(0, base.pointer_threshold, base.pointer_curvature) / p["pointer_rate"]
    return tau_p, tau_q, tau_s, a["train_steps"]


def situation_first(conds: pd.DataFrame, p: dict, ctx: Context) -> np.ndarray:
    """The path model's P(the situation is known before the base objective, or a pointer to it, is
    reached | one of them is reached within training), per condition (claim C1)."""
    tau_p, tau_q, tau_s, H = _medians(conds, p, ctx.proxy_rate, ctx.path)
    r = _race(np.stack([tau_p, tau_q, tau_s], 1), p["rate_spread"], H)
    some = 1 - r[:, 3]
    return np.divide(r[:, 2], some, out=np.full_like(some, np.nan), where=some > 1e-12)


def _path_atoms(conds: pd.DataFrame, p: dict, proxy_rate: float, base: PathParams = PathParams()) -> np.ndarray:
    tau_p, tau_q, tau_s, H = _medians(conds, p, proxy_rate, base)
    L = p["long_term_goal"]
    three = _race(np.stack([tau_p, tau_q, tau_s], 1), p["rate_spread"], H)  # internal, corrigible, deceptive, none
    two = _race(np.stack([tau_p, tau_q], 1), p["rate_spread"], H)
    internal = L * three[:, 0] + (1 - L) * two[:, 0]
    corrigible = L * three[:, 1] + (1 - L) * two[:, 1]
    deceptive = L * three[:, 2]
    none = L * three[:, 3] + (1 - L) * two[:, 2]
    aligned = internal + corrigible
    share = np.divide(internal, aligned, out=np.full_like(aligned, 0.5), where=aligned > 0)  # whom a deceptive run mimics
    return np.stack([internal, corrigible, deceptive * share, deceptive * (1 - share), none], 1)


def _bias_atoms(conds: pd.DataFrame, p: dict, bias: BiasParams = BiasParams()) -> np.ndarray:
    bits = np.array(list(description_lengths(bias).values()))
    steps = np.array(list(compute_steps(bias).values()))
    score = -p["w_simplicity"] * bits - p["w_speed"] * steps
    e = np.exp(score - score.max())
    return np.tile(e / e.sum(), (len(conds), 1))


def _null_atoms(conds: pd.DataFrame, p: dict) -> np.ndarray:
    a = _arrays(conds)
    pi = softmax([0.0, p["logit_corrigible"], p["logit_proxy"], p["logit_mixed"]])
    rho = np.exp(-a["distance"] / p["distance_scale"])
    og = a["own_goal"]
    I, C, P, M = pi
    return np.stack([I * rho, C * rho, I * (1 - rho) * og, C * (1 - rho) * og, I * (1 - rho) * (1 - og), C * (1 - rho) * (1 - og),
                     np.full_like(rho, P), np.full_like(rho, M)], 1)


@dataclass(frozen=True)
class Context:
    """What a model needs beside its free parameters: the proxy rate (measured on the fit conditions)
    and the fixed texts' parameters of both theory models."""

    proxy_rate: float = PathParams.proxy_rate
    path: PathParams = PathParams()
    bias: BiasParams = BiasParams()


def atoms(model: str, conds: pd.DataFrame, params: dict, ctx: Context = Context()) -> np.ndarray:
    """(conditions, atoms) probabilities of `ATOMS[model]` before the lapse."""
    fn: dict[str, Callable] = {
        "path": lambda: _path_atoms(conds, params, ctx.proxy_rate, ctx.path),
        "bias": lambda: _bias_atoms(conds, params, ctx.bias),
        "null": lambda: _null_atoms(conds, params),
    }
    a = np.clip(fn[model](), 0, None)
    return a / a.sum(1, keepdims=True)


def verdict_probs(model: str, conds: pd.DataFrame, params: dict, ctx: Context = Context()) -> np.ndarray:
    """(conditions, VERDICTS) predicted verdict distribution, lapse included."""
    a = atoms(model, conds, params, ctx)
    M = np.array([[1.0 if at[0] == v else 0.0 for v in VERDICTS] for at in ATOMS[model]])  # (atoms, verdicts)
    eps = params["lapse"]
    return (1 - eps) * a @ M + eps / len(VERDICTS)


def predictions(model: str, conds: pd.DataFrame, params: dict, ctx: Context = Context()) -> dict[str, np.ndarray]:
    """Everything the model predicts per condition: `verdict` (C, VERDICTS), `training` and `deployment`
    (C, HALVES: per-situation verdicts), `gap_mean` and `gap_over_half` (C,)."""
    a = atoms(model, conds, params, ctx)
    at = ATOMS[model]
    eps = params["lapse"]
    half = lambda j: (1 - eps) * a @ np.array([[1.0 if x[j] == h else 0.0 for h in HALVES] for x in at]) + eps / len(HALVES)  # noqa: E731
    gap = np.array([x[3] for x in at])
    return {
        "verdict": verdict_probs(model, conds, params, ctx),
        "training": half(1),
        "deployment": half(2),
        "gap_mean": (1 - eps) * a @ gap,
        "gap_over_half": (1 - eps) * a @ (gap > 0.5),
    }


def simulate_verdicts(model: str, conds: pd.DataFrame, params: dict, runs: int, seed: int, ctx: Context = Context()) -> pd.DataFrame:
    """`conds` with its verdict counts (`n_<verdict>`, `runs`) replaced by a multinomial draw of `runs`
    runs per condition from the model (numpy.random.default_rng(seed)): data the model itself made."""
    rng = np.random.default_rng(seed)
    p = verdict_probs(model, conds, params, ctx)
    out = conds.copy()
    counts = np.array([rng.multinomial(runs, row / row.sum()) for row in p])
    for j, v in enumerate(VERDICTS):
        out[f"n_{v}"] = counts[:, j]
    out["runs"] = runs
    for col in ("gap_mean", "gap_low", "gap_high", "gap_over_half", *(f"{h}_{x}" for h in ("training", "deployment") for x in HALVES)):
        if col not in out:
            out[col] = np.nan  # what was not simulated is not measured
    return out


def texts_params(model: str) -> dict:
    """The texts' values of a theory model's free parameters (unfitted)."""
    return {f.name: float(f.texts) for f in FREE[model]}
