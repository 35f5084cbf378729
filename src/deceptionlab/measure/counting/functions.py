"""P_B(f | S) against P_SGD(f | S) at the level of functions (Mingard et al. 2021), on held-out inputs.

On bitworld a function is a sign on ~1,300 inputs that no training input fixes: no two posterior samples
and no two trained runs share one, so the frequency of a whole function is not measurable by sampling.
The comparison is made on the marginal function on m held-out probe inputs (default 8, so 256 possible
functions): f_m = the decisions on m distinct probe inputs that are not training inputs, spread evenly
over the probe cells. P_B(f_m | S) is its frequency among the posterior samples (Wilson interval with
the effective sample size of its indicator over the chains), P_SGD(f_m | S) its frequency among the
condition's trained runs that fit (Wilson). The statistic is the Pearson correlation of log10 P_B with
log10 P_SGD over the functions SGD produced (Mingard et al.'s plot), with the number of functions it rests on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...core.scoring import decision_codes
from ...core.stats import wilson
from .classes import Problem
from .sampler import effective_sample_size

COLUMNS = ["condition", "source", "function", "count", "n", "ess", "p", "low", "high"]


def held_out_positions(problem: Problem, m: int = 8) -> np.ndarray:
    """m probe positions (indices into the probe inputs) whose inputs are distinct and not training inputs,
    evenly spread over the probe list (cell after cell)."""
    train = set(problem.train.tolist())
    seen, free = set(), []
    for pos, u in enumerate(problem.probe.tolist()):
        if u not in train and u not in seen:
            seen.add(u)
            free.append(pos)
    if len(free) < m:
        raise ValueError(f"only {len(free)} held-out probe inputs, fewer than m = {m}")
    return np.asarray(free)[np.linspace(0, len(free) - 1, m).round().astype(int)]


def _codes(bits: np.ndarray) -> np.ndarray:
    """(N, m) bool -> one integer per row, first input the most significant bit."""
    return (bits.astype(np.int64) << np.arange(bits.shape[1] - 1, -1, -1)).sum(1)


def _label(code: int, m: int) -> str:
    return format(int(code), f"0{m}b")


def posterior_functions(problem: Problem, signs, chains: int, steps: int, positions: np.ndarray, source: str) -> pd.DataFrame:
    """Frequencies of the held-out functions among posterior samples (chain-major rows (chains * steps, U))."""
    s = np.asarray(signs)[:, problem.probe[positions]] > 0
    codes = _codes(s)
    rows = []
    n = len(codes)
    for code in np.unique(codes):
        ind = (codes == code).astype(float)
        ess = effective_sample_size(ind.reshape(chains, steps)) if 0 < ind.sum() < n else float(n)
        ess = ess if ess == ess else float(n)
        p = float(ind.mean())
        lo, hi = wilson(p * ess, ess)
        rows.append({"source": source, "function": _label(code, len(positions)), "count": int(ind.sum()), "n": n, "ess": ess, "p": p,
                     "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows)


def sgd_functions(runs: pd.DataFrame, problem: Problem, positions: np.ndarray) -> pd.DataFrame:
    """Frequencies of the held-out functions among a condition's trained runs that fit (train accuracy at the threshold)."""
    fit = runs[runs.train_accuracy >= problem.fit_threshold - 1e-6] if "train_accuracy" in runs else runs
    if fit.empty:
        return pd.DataFrame(columns=COLUMNS[1:])
    packed = np.stack([np.frombuffer(b, np.uint8) for b in fit.decisions])
    codes = decision_codes(packed, int(fit.n_decisions.iloc[0]), len(problem.probe))[:, positions] > 0
    values, counts = np.unique(_codes(codes), return_counts=True)
    n = len(codes)
    rows = []
    for code, k in zip(values, counts):
        lo, hi = wilson(int(k), n)
        rows.append({"source": "sgd", "function": _label(code, len(positions)), "count": int(k), "n": n, "ess": float(n), "p": k / n,
                     "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows)


def correlation(functions: pd.DataFrame, source: str = "nngp") -> dict:
    """Pearson r of log10 P_B with log10 P_SGD over the functions SGD produced that the posterior also produced;
    how many functions SGD produced, and the share of SGD's mass on functions the posterior never produced."""
    sgd = functions[functions.source == "sgd"].set_index("function")
    post = functions[functions.source == source].set_index("function")
    both = sgd.index.intersection(post.index)
    r = float(np.corrcoef(np.log10(post.loc[both, "p"]), np.log10(sgd.loc[both, "p"]))[0, 1]) if len(both) >= 3 else math.nan
    unseen = float(sgd.loc[sgd.index.difference(post.index), "p"].sum()) if len(sgd) else math.nan
    return {"source": source, "r_log10": r, "functions_sgd": len(sgd), "functions_both": len(both), "sgd_mass_unseen": unseen}
