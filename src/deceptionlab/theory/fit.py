"""Fit the theory on some conditions of a results folder, predict the others, and score it against a
null model that knows nothing of goals and against the texts' own (unfitted) values (docs/theory.md,
"Fitting").

Likelihood: the verdict counts of each condition are multinomial with the model's predicted verdict
distribution (`lab_units.verdict_probs`), conditions independent. Free parameters get the prior of
their range (`lab_units.FREE`); the fit is the posterior mode (scipy.optimize, L-BFGS-B from several
starts) on an unconstrained scale, and the posterior is its Laplace approximation there (a Gaussian
with the inverse Hessian as covariance, so a parameter the fit conditions do not pin down keeps its
prior range). Held-out predictions are posterior predictive: the mean over posterior draws.

Scores per held-out run: log-likelihood of its verdict and the Brier score of the verdict
distribution. The theory's verdict per setting compares its per-run log-likelihood with the null's:
a 95% bootstrap interval (over runs) of the mean per-run difference; `supported` when it lies above
0, `falsified` when below, else `inconclusive`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import norm

from ..core.scoring import VERDICTS
from ..core.stats import bootstrap_mean, wilson
from .biases import BiasParams
from .lab_units import (
    FREE,
    HALVES,
    MODELS,
    Context,
    measure_conditions,
    predictions,
    proxy_rate_from,
    texts_params,
    verdict_probs,
)

THEORIES = ("path", "bias")
MODEL_NAMES = {"path": "path model (high path dependence)", "bias": "bias model (low path dependence)", "null": "null: nearest trained input"}


class FitError(ValueError):
    """Bad filters or conditions: the message is one line naming the problem."""


# -- filters -----------------------------------------------------------------------------------------
def parse_filter(text: str) -> list[tuple[str, str]]:
    """`axis=value[,axis=value]` -> [(axis, value), ...]."""
    pairs = []
    for part in text.split(","):
        axis, sep, value = part.partition("=")
        if not sep or not axis.strip() or not value.strip():
            raise FitError(f"condition filter {text!r}: expected axis=value[,axis=value]")
        pairs.append((axis.strip(), value.strip()))
    return pairs


def _matches(column: pd.Series, value: str) -> np.ndarray:
    as_text = column.astype(str)
    hit = (as_text == value) | (as_text.str.lower() == value.lower())
    try:
        hit |= pd.to_numeric(column, errors="coerce") == float(value)
    except ValueError:
        pass
    return hit.to_numpy()


def select(runs: pd.DataFrame, filters: list[str], axes: list[str], what: str) -> np.ndarray:
    """Rows matching any of `filters` (each a conjunction of axis=value). Raises FitError for an axis
    that is not a condition axis, or a filter that matches no run."""
    if not filters:
        raise FitError(f"{what}: give at least one condition filter axis=value")
    hit = np.zeros(len(runs), bool)
    for f in filters:
        this = np.ones(len(runs), bool)
        for axis, value in parse_filter(f):
            if axis not in axes:
                raise FitError(f"{what} {f!r}: unknown axis {axis!r} (axes: {', '.join(axes)})")
            m = _matches(runs[axis], value)
            if not m.any():
                seen = ", ".join(sorted(map(str, runs[axis].unique())))
                raise FitError(f"{what} {f!r}: no run has {axis}={value} (values: {seen})")
            this &= m
        if not this.any():
            raise FitError(f"{what} {f!r}: no condition matches all of it")
        hit |= this
    return hit


# -- fitting -----------------------------------------------------------------------------------------
def _counts(conds: pd.DataFrame) -> np.ndarray:
    return conds[[f"n_{v}" for v in VERDICTS]].to_numpy(float)


def _params(model: str, u: np.ndarray) -> dict:
    return {f.name: float(f.value(x)) for f, x in zip(FREE[model], u)}


@dataclass
class Posterior:
    """A model's fit: the mode `u` on the unconstrained scale, the Laplace covariance, draws of it."""

    model: str
    u: np.ndarray
    cov: np.ndarray
    draws: np.ndarray  # (D, k) unconstrained
    log_lik: float  # at the mode, on the fit conditions
    converged: bool

    @property
    def mode(self) -> dict:
        return _params(self.model, self.u)

    def draw_params(self) -> list[dict]:
        return [_params(self.model, d) for d in self.draws]

    def table(self) -> pd.DataFrame:
        rows = []
        for j, f in enumerate(FREE[self.model]):
            vals = np.asarray(f.value(self.draws[:, j]), float)
            rows.append({"model": self.model, "param": f.name, "value": float(f.value(self.u[j])), "low": float(np.quantile(vals, 0.025)),
                         "high": float(np.quantile(vals, 0.975)), "texts": f.texts, "prior": f.prior_range(), "meaning": f.meaning})
        return pd.DataFrame(rows)


def _neg_log_post(model: str, conds: pd.DataFrame, counts: np.ndarray, ctx: Context):
    free = FREE[model]

    def f(u: np.ndarray) -> float:
        p = verdict_probs(model, conds, _params(model, u), ctx)
        ll = float(np.sum(counts * np.log(np.clip(p, 1e-300, None))))
        return -(ll + sum(fr.log_prior(x) for fr, x in zip(free, u)))

    return f


def _hessian(f, u: np.ndarray, h: float = 1e-2) -> np.ndarray:
    k = len(u)
    H = np.zeros((k, k))
    f0 = f(u)
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            if i == j:
                H[i, i] = (f(u + ei) - 2 * f0 + f(u - ei)) / h**2
            else:
                H[i, j] = H[j, i] = (f(u + ei + ej) - f(u + ei - ej) - f(u - ei + ej) + f(u - ei - ej)) / (4 * h**2)
    return H


def fit_model(model: str, conds: pd.DataFrame, ctx: Context = Context(), seed: int = 0, starts: int = 4, draws: int = 300) -> Posterior:
    """Posterior mode and Laplace approximation of `model`'s free parameters on the conditions `conds`
    (rows of `measure_conditions`). Starts: the texts' values (or 0) and `starts - 1` seeded draws."""
    rng = np.random.default_rng(seed)
    free = FREE[model]
    counts = _counts(conds)
    f = _neg_log_post(model, conds, counts, ctx)
    x0 = np.array([fr.unconstrained(fr.texts) if fr.texts is not None and fr.kind != "real" and fr.lo < fr.texts < fr.hi else 0.0 for fr in free])
    best = None
    for s in range(starts):
        start = x0 if s == 0 else rng.normal(0, 1.5, len(free))
        res = minimize(f, start, method="L-BFGS-B", bounds=[(-12, 12)] * len(free))
        if best is None or res.fun < best.fun:
            best = res
    u = best.x
    H = _hessian(f, u)
    H = (H + H.T) / 2
    w, V = np.linalg.eigh(H)
    w = np.maximum(w, 1e-3)  # a flat direction keeps (about) the prior's spread: sd at most ~30 on the logit scale
    cov = (V / w) @ V.T
    d = rng.multivariate_normal(u, cov, size=draws)
    d = np.clip(d, -30, 30)
    ll = -f(u) - sum(fr.log_prior(x) for fr, x in zip(free, u))
    return Posterior(model, u, cov, d, float(ll), bool(best.success))


# -- scores ------------------------------------------------------------------------------------------
def posterior_predictive(post: Posterior, conds: pd.DataFrame, ctx: Context) -> dict[str, np.ndarray]:
    """Mean over posterior draws of every prediction, and its 2.5% and 97.5% quantiles (`<key>_low`, `_high`)."""
    per = [predictions(post.model, conds, p, ctx) for p in post.draw_params()]
    out = {}
    for k in per[0]:
        a = np.stack([x[k] for x in per])
        out[k], out[f"{k}_low"], out[f"{k}_high"] = a.mean(0), np.quantile(a, 0.025, axis=0), np.quantile(a, 0.975, axis=0)
    return out


def per_run_scores(p: np.ndarray, conds: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per run (conditions expanded by their verdict counts): log p(verdict) and the Brier score."""
    counts = _counts(conds).astype(int)
    ll, brier = [], []
    for c in range(len(conds)):
        for j in range(len(VERDICTS)):
            n = counts[c, j]
            if n:
                onehot = np.eye(len(VERDICTS))[j]
                ll.append(np.full(n, math.log(max(p[c, j], 1e-300))))
                brier.append(np.full(n, float(np.sum((p[c] - onehot) ** 2))))
    return (np.concatenate(ll), np.concatenate(brier)) if ll else (np.zeros(0), np.zeros(0))


def judge(diff_low: float, diff_high: float) -> str:
    """`supported` when the interval of (theory - null) per-run log-likelihood is above 0, `falsified` below."""
    if diff_low > 0:
        return "supported"
    if diff_high < 0:
        return "falsified"
    return "inconclusive"


# -- sensitivity -------------------------------------------------------------------------------------
def reversals(post: Posterior, conds: pd.DataFrame, ctx: Context, grid: int = 61) -> pd.DataFrame:
    """Per free parameter: with the others at the mode, the value nearest the mode at which the most
    likely verdict of some held-out condition changes ("reverses if X < v" or "X > v"), which
    condition and to what, and where v lies in the parameter's (Laplace) posterior: P(X < v)."""
    base = verdict_probs(post.model, conds, post.mode, ctx).argmax(1)
    rows = []
    for j, f in enumerate(FREE[post.model]):
        sd = math.sqrt(post.cov[j, j])
        row = {"model": post.model, "param": f.name, "value": float(f.value(post.u[j])), "reverses": "no value in the prior range", "at": math.nan,
               "posterior_quantile": math.nan, "condition": "", "to": ""}
        found = None
        for side in (-1, 1):
            for x in np.linspace(post.u[j], post.u[j] + side * 12, grid)[1:]:
                u = post.u.copy()
                u[j] = x
                lead = verdict_probs(post.model, conds, _params(post.model, u), ctx).argmax(1)
                changed = np.flatnonzero(lead != base)
                if len(changed):
                    if found is None or abs(x - post.u[j]) < abs(found[0] - post.u[j]):
                        found = (x, side, int(changed[0]), int(lead[changed[0]]))
                    break
        if found is not None:
            x, side, c, to = found
            v = float(f.value(x))
            row.update(at=v, reverses=f"reverses if {f.name} {'<' if side < 0 else '>'} {v:.3g}", posterior_quantile=float(norm.cdf((x - post.u[j]) / sd)),
                       condition=str(conds.condition.iloc[c]), to=f"{VERDICTS[base[c]]} -> {VERDICTS[to]}")
        rows.append(row)
    return pd.DataFrame(rows)


# -- the whole step ----------------------------------------------------------------------------------
@dataclass
class TheoryFit:
    """Everything `fit_theory` found (docs/theory.md, "Fitting"): tables and the verdict per theory."""

    fit: list[str]
    predict: list[str]
    conditions: pd.DataFrame  # measure_conditions + "role" (fit / predict)
    parameters: pd.DataFrame  # free parameters with intervals, plus the measured ones
    scores: pd.DataFrame  # model, role (fit / predict), log_lik per run, interval, brier
    verdicts: pd.DataFrame  # theory, mean difference to the null with interval, verdict
    predictions: pd.DataFrame  # held-out condition x model x quantity: predicted (interval) vs measured (interval)
    reversals: pd.DataFrame
    posteriors: dict = field(default_factory=dict, repr=False)
    claims: pd.DataFrame = field(default_factory=pd.DataFrame)  # fit_claims: only when fitted on a runs table

    @property
    def verdict(self) -> str:
        """The path model's verdict (the argument's model of training)."""
        return str(self.verdicts.set_index("theory").loc["path", "verdict"])

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"conditions": self.conditions, "parameters": self.parameters, "scores": self.scores, "verdicts": self.verdicts,
                "predictions": self.predictions, "reversals": self.reversals, "claims": self.claims}


def _measured_parameters(fitconds: pd.DataFrame, proxy_source: str, ctx: Context) -> pd.DataFrame:
    P = ctx.path
    rows = [
        {"model": "path", "param": "proxy_rate", "value": ctx.proxy_rate, "status": "measured", "source": proxy_source},
        {"model": "path", "param": "sa_steps", "value": math.nan, "status": "measured per condition",
         "source": "median steps of training until the situation is linearly decodable at 0.95 (replaces world_rate)"},
        {"model": "path", "param": "initial_proxy", "value": math.nan, "status": "measured per condition", "source": "internal template score when training begins"},
        {"model": "path", "param": "own_goal", "value": math.nan, "status": "measured per condition", "source": "share of runs acting on their own goal (proxy score >= 0.9) when training begins"},
        {"model": "path", "param": "train_steps", "value": math.nan, "status": "measured per condition", "source": "steps of the judged training"},
        {"model": "null", "param": "distance", "value": math.nan, "status": "measured per condition", "source": "cue columns between cue twins (cue_distance)"},
        {"model": "null", "param": "own_goal", "value": math.nan, "status": "measured per condition", "source": "as the path model's"},
    ]
    for name in ("proxy_curvature", "world_curvature", "pointer_curvature", "situational_threshold", "objective_knowledge", "pointer_threshold", "proxy_tolerance"):
        rows.append({"model": "path", "param": name, "value": getattr(P, name), "status": "fixed (texts)", "source": "not identifiable from verdict counts beside the rates"})
    for name, why in (("temperature", "not in the race (each path followed alone)"), ("derail_rate", "not in the race"),
                      ("long_term_gain", "folded into long_term_goal"), ("initial_proxy (texts' 0.5)", "replaced by the measured initial_proxy"),
                      ("world_rate", "replaced by the measured sa_steps")):
        rows.append({"model": "path", "param": name, "value": math.nan, "status": "unused", "source": why})
    B = ctx.bias
    for name in ("objective_bits", "pointer_bits", "long_term_goal_bits", "situational_reasoning_bits", "objective_steps", "pointer_steps", "deception_steps"):
        rows.append({"model": "bias", "param": name, "value": getattr(B, name), "status": "fixed (texts or --prior)",
                     "source": "description lengths: -log2 of measured prior volumes with --prior, else the texts'"})
    return pd.DataFrame(rows)


def fit_theory(runs: pd.DataFrame, fit: list[str], predict: list[str], axes: list[str] | None = None, *, seed: int = 0, by: str = "condition",
               bias: BiasParams | None = None, draws: int = 300) -> TheoryFit:
    """Fit the path model, the bias model and the null on the conditions of `runs` matching `fit`
    (filters `axis=value[,axis=value]`, any of which may match), predict those matching `predict`,
    and score all of them and the texts' unfitted values on the held-out runs. `axes`: the columns
    filters may name (default: every column but the per-run ones). Raises FitError on bad filters,
    on overlapping sets, or on conditions without runs."""
    axes = list(axes) if axes is not None else condition_columns(runs, by)
    fit_rows = select(runs, fit, axes, "--fit")
    pred_rows = select(runs, predict, axes, "--predict")
    both = set(runs[by][fit_rows]) & set(runs[by][pred_rows])
    if both:
        raise FitError(f"conditions in both --fit and --predict: {min(map(str, both))!r}" + (f" and {len(both) - 1} more" if len(both) > 1 else ""))
    fitconds = measure_conditions(runs[fit_rows], by)
    predconds = measure_conditions(runs[pred_rows], by)
    rate, source = proxy_rate_from(runs[fit_rows])
    ctx = Context(proxy_rate=rate, bias=bias if bias is not None else BiasParams())
    res = fit_conditions(fitconds, predconds, ctx, seed=seed, draws=draws, fit=fit, predict=predict, proxy_source=source)
    from .fit_claims import fit_claims

    res.claims = fit_claims(runs[fit_rows | pred_rows], res.conditions, res.posteriors, ctx, by, seed)
    return res


def fit_conditions(fitconds: pd.DataFrame, predconds: pd.DataFrame, ctx: Context = Context(), *, seed: int = 0, draws: int = 300, starts: int = 4,
                   fit: list[str] = (), predict: list[str] = (), proxy_source: str = "given") -> TheoryFit:
    """`fit_theory` on condition tables already measured (`measure_conditions`, or simulated with
    `simulate_verdicts`): fit every model on `fitconds`, score and predict on `predconds`."""
    posts = {m: fit_model(m, fitconds, ctx, seed=seed + i, draws=draws, starts=starts) for i, m in enumerate(MODELS)}

    score_rows, per_run, pps = [], {}, {}
    for role, conds in (("fit", fitconds), ("predict", predconds)):
        for m in MODELS:
            pps[(role, m)] = posterior_predictive(posts[m], conds, ctx)
            per_run[(role, m)] = per_run_scores(pps[(role, m)]["verdict"], conds)
        for m in THEORIES:
            per_run[(role, f"{m} (texts)")] = per_run_scores(verdict_probs(m, conds, texts_params(m), ctx), conds)
        for k, (ll, br) in per_run.items():
            if k[0] != role:
                continue
            lo, hi = bootstrap_mean(ll, seed)
            score_rows.append({"role": role, "model": k[1], "runs": len(ll), "log_lik": float(ll.mean()), "log_lik_low": lo, "log_lik_high": hi,
                               "brier": float(br.mean()), "brier_low": bootstrap_mean(br, seed)[0], "brier_high": bootstrap_mean(br, seed)[1]})
    scores = pd.DataFrame(score_rows)

    vrows = []
    null_ll = per_run[("predict", "null")][0]
    for m in (*THEORIES, *(f"{t} (texts)" for t in THEORIES)):
        d = per_run[("predict", m)][0] - null_ll
        lo, hi = bootstrap_mean(d, seed)
        vrows.append({"theory": m, "held_out_runs": len(d), "diff_log_lik": float(d.mean()) if len(d) else math.nan, "low": lo, "high": hi, "verdict": judge(lo, hi)})
    verdicts = pd.DataFrame(vrows)

    pred_tables = []
    for m in MODELS:
        pred_tables.append(_prediction_rows(MODEL_NAMES[m], predconds, pps[("predict", m)]))
    for m in THEORIES:
        pp = predictions(m, predconds, texts_params(m), ctx)
        pred_tables.append(_prediction_rows(f"{m} (texts)", predconds, {**pp, **{f"{k}_low": v for k, v in pp.items()}, **{f"{k}_high": v for k, v in pp.items()}}))
    params = pd.concat([*(posts[m].table().assign(status="free (fitted)", source="posterior mode; 95% Laplace interval") for m in MODELS),
                        _measured_parameters(fitconds, proxy_source, ctx)], ignore_index=True)
    conditions = pd.concat([fitconds.assign(role="fit"), predconds.assign(role="predict")], ignore_index=True)
    rev = pd.concat([reversals(posts[m], predconds, ctx) for m in THEORIES], ignore_index=True)
    return TheoryFit(list(fit), list(predict), conditions, params, scores, verdicts, pd.concat(pred_tables, ignore_index=True), rev, posts)


def condition_columns(runs: pd.DataFrame, by: str = "condition") -> list[str]:
    """The columns that hold one scalar value per condition (the sweep's axes and the like)."""
    skip = {by, "condition", "condition_index", "experiment", "world", "config", "run_id", "seed", "data_seed"}
    out = []
    for c in runs.columns:
        if c in skip or not runs[c].map(lambda v: isinstance(v, (str, int, float, bool, np.integer, np.floating, np.bool_))).all():
            continue
        if (runs.groupby(by)[c].nunique(dropna=False) == 1).all():
            out.append(c)
    return out


def _prediction_rows(model: str, conds: pd.DataFrame, pp: dict) -> pd.DataFrame:
    rows = []
    for c, cond in enumerate(conds.itertuples(index=False)):
        n = cond.runs
        for j, v in enumerate(VERDICTS):
            k = getattr(cond, f"n_{v}")
            lo, hi = wilson(k, n)
            rows.append({"condition": cond.condition, "model": model, "quantity": f"P({v})", "predicted": pp["verdict"][c, j],
                         "predicted_low": pp["verdict_low"][c, j], "predicted_high": pp["verdict_high"][c, j],
                         "measured": k / n, "measured_low": float(lo), "measured_high": float(hi)})
        for half in ("training", "deployment"):
            for j, h in enumerate(HALVES):
                share = getattr(cond, f"{half}_{h}")
                lo, hi = wilson(round(share * n), n) if not math.isnan(share) else (math.nan, math.nan)
                rows.append({"condition": cond.condition, "model": model, "quantity": f"P(verdict_{half} = {h})", "predicted": pp[half][c, j],
                             "predicted_low": pp[f"{half}_low"][c, j], "predicted_high": pp[f"{half}_high"][c, j],
                             "measured": share, "measured_low": float(lo), "measured_high": float(hi)})
        over = cond.gap_over_half
        lo, hi = wilson(round(over * n), n) if not math.isnan(over) else (math.nan, math.nan)
        rows.append({"condition": cond.condition, "model": model, "quantity": "P(gap > 0.5)", "predicted": pp["gap_over_half"][c],
                     "predicted_low": pp["gap_over_half_low"][c], "predicted_high": pp["gap_over_half_high"][c],
                     "measured": over, "measured_low": float(lo), "measured_high": float(hi)})
        rows.append({"condition": cond.condition, "model": model, "quantity": "mean gap", "predicted": pp["gap_mean"][c],
                     "predicted_low": pp["gap_mean_low"][c], "predicted_high": pp["gap_mean_high"][c],
                     "measured": cond.gap_mean, "measured_low": cond.gap_low, "measured_high": cond.gap_high})
    return pd.DataFrame(rows)
