"""The two prediction columns of the claims table: the fitted theory's (read from a theory fit's claims
table: the path model fitted on some conditions, predicting held-out ones, `theory.fit_claims`) and the
texts' assumption (the theory's models at the texts' parameter values, unfitted, evaluated on the very
conditions a claim is judged on, in the lab's units: `theory.lab_units`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..core.memo import per_frame
from ..theory.biases import BiasParams, bias_predictions, compute_steps
from ..theory.fit import MODEL_NAMES
from ..theory.lab_units import Context, measure_conditions, predictions, proxy_rate_from, situation_first, texts_params
from ..theory.path_model import PathParams, path_quantities
from .judging import NO_FIT, Evidence

MODELLED_COLUMNS = ("condition", "verdict", "traj_step", "traj_deploy_score_internal", "traj_deploy_score_corrigible", "traj_score_internal", "traj_score_proxy")


def can_model(runs: pd.DataFrame) -> bool:
    """Whether the path model can be evaluated on these runs (their trajectories are stored)."""
    return len(runs) > 0 and all(c in runs for c in MODELLED_COLUMNS)


def path_at_texts(runs: pd.DataFrame, quantity: Callable[[pd.DataFrame, dict, Context], np.ndarray]) -> float:
    """The run-weighted mean over the conditions of `runs` of `quantity(conditions, params, ctx)` for the
    path model at the texts' values (the proxy's rate measured on these runs, as the fit does). NaN
    when the runs hold no trajectories."""
    if not can_model(runs):
        return math.nan
    conds, ctx = _modelled(runs)
    v = np.asarray(quantity(conds, texts_params("path"), ctx), float)
    w = conds.runs.to_numpy(float)
    ok = np.isfinite(v)
    return float(np.sum(v[ok] * w[ok]) / np.sum(w[ok])) if ok.any() else math.nan


@per_frame
def _modelled(runs: pd.DataFrame) -> tuple[pd.DataFrame, Context]:
    """The conditions the path model is evaluated on and its context, measured once per frame of runs (the
    claims ask for them several times)."""
    return measure_conditions(runs, "condition"), Context(proxy_rate=proxy_rate_from(runs)[0])


def texts_situation_first(runs: pd.DataFrame) -> str:
    v = path_at_texts(runs, situation_first)
    return f"path model at the texts' values: P(situation first) {v:.2f}" if v == v else "path model: needs stored trajectories"


def texts_verdict_difference(runs: pd.DataFrame, a: str, b: str) -> str:
    from ..core.scoring import VERDICTS

    i, j = VERDICTS.index(a), VERDICTS.index(b)

    def difference(c, p, ctx):
        verdict = predictions("path", c, p, ctx)["verdict"]
        return verdict[:, i] - verdict[:, j]

    v = path_at_texts(runs, difference)
    return f"path model at the texts' values: P({a}) - P({b}) {v:+.2f}" if v == v else "path model: needs stored trajectories"


def texts_gap(runs: pd.DataFrame) -> float:
    return path_at_texts(runs, lambda c, p, ctx: predictions("path", c, p, ctx)["gap_mean"])


def texts_path_steps() -> str:
    q = path_quantities(PathParams()).set_index("path")
    return "path model at the texts' values, each path followed alone: " + ", ".join(f"{c} {q.loc[c, 'steps']:.0f} steps" for c in q.index)


def texts_bias() -> str:
    t = bias_predictions(BiasParams()).set_index("class")
    return ("bias model at the texts' values (" + ", ".join(f"{c} {t.loc[c, 'description_bits']:g} bits" for c in t.index) + "): "
            + ", ".join(f"P({c}) {100 * t.loc[c, 'p']:.2g}%" for c in t.index))


def texts_speed() -> str:
    return "bias model at the texts' values: compute steps " + ", ".join(f"{c} {v:g}" for c, v in compute_steps(BiasParams()).items())


def fitted_claim(ev: Evidence, cid: str) -> str:
    """The fitted path model's prediction for claim `cid` on the fit's held-out conditions, from the fit's
    claims table (`theory.fit_claims`), with the measurement there beside it."""
    fit = ev.theory_fit
    if fit is None:
        return NO_FIT
    t = fit.get("claims")
    if t is None or t.empty or cid not in set(t.claim):
        return "the fit does not judge this claim"
    r = t.set_index("claim").loc[cid]
    if r.fitted_theory in ("-", ""):
        return f"fit: {r.judged_on}"
    return f"fitted path model on the held-out conditions ({r.judged_on}): {r.fitted_theory}; measured there {r.measured} ({r.verdict})"


def fitted_bias(ev: Evidence) -> str:
    """The fitted bias model's P(class) (the same in every condition), from the fit's predictions table."""
    fit = ev.theory_fit
    if fit is None:
        return NO_FIT
    p = fit.get("predictions")
    if p is None or p.empty:
        return "the fit predicts nothing"
    p = p[p.model == MODEL_NAMES["bias"]]
    parts = []
    for c in ("internal", "corrigible", "deceptive"):
        q = p[p.quantity == f"P({c})"]
        if len(q):
            parts.append(f"P({c}) {100 * q.predicted.mean():.2g}% ({100 * q.predicted_low.mean():.2g}-{100 * q.predicted_high.mean():.2g})")
    return "fitted bias model: " + ", ".join(parts) if parts else "the fit predicts no class share"
