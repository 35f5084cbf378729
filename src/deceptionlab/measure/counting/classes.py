"""The counting argument as measurements (claim C5): P(class | S) per source, with intervals.

Sources, each judged by the lab's verdict rule (`judge.deception`: the same per-situation verdict
as trained runs, from decision codes on the probe inputs, training accuracy 1.0 since every sample
fits S):
- `naive`: uniform over the Boolean functions on the probe inputs that agree with the training data
  (each other probe decision a fair coin), sampled;
- `prior`: unconditioned random networks of the model family (`prior_volume.class_prior`);
- `nngp`: P_B(class | S), the NNGP of the model family conditioned on sign(f) = y on S, by
  elliptical slice sampling (`sampler`); intervals are Wilson's with the effective sample size;
- `sgd:<condition>`: the trained runs' verdict frequencies (Wilson).
Beside each probability its description length -log2 P in bits, with the interval's ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...core.scoring import VERDICTS
from ...core.stats import wilson
from ...judge.deception import Judge, posterior, soft_columns, verdict_rows
from .kernel import LayerVariances, nngp_kernel
from .sampler import Chains, Conditional, effective_sample_size, elliptical_slice, one_thread, rejection

COLUMNS = ["source", "verdict", "count", "n", "ess", "p", "low", "high", "soft", "bits", "bits_low", "bits_high"]
SOFT = {"internal": "p_internal", "corrigible": "p_corrigible", "deceptive": "p_deceptive", "proxy": "p_proxy", "mixed": "p_mixed"}


@dataclass
class Problem:
    """A world's inputs as the GP sees them: the distinct inputs of the probe cells and the training
    data, where each probe input and each conditioned training row sits among them, and the labels."""

    judge: Judge
    x: np.ndarray  # (U, n_in) distinct inputs
    probe: np.ndarray  # (n_probe,) index of each probe input (cell after cell) among them
    train: np.ndarray  # (T,) the conditioned training inputs among them
    y: np.ndarray  # (T,) their labels, +-1
    threshold: float
    fit_threshold: float

    @classmethod
    def of(cls, world, fit_rows: int | None = None, seed: int = 0, threshold: float = 0.9, fit_threshold: float = 0.95) -> "Problem":
        """`fit_rows`: condition on that many training rows, the same random subset as `class_prior(..., fit_rows, seed)`."""
        fit = world.datasets[world.fit_dataset]
        n_fit = len(fit.x)
        if fit_rows is not None and not 1 <= fit_rows <= n_fit:
            raise ValueError(f"fit_rows must be between 1 and {n_fit}, got {fit_rows}")
        rows = torch.randperm(n_fit, generator=torch.Generator().manual_seed(seed + 1))[:fit_rows] if fit_rows else torch.arange(n_fit)
        probe_x = torch.cat([c.x for c in world.probe_cells])
        x, inverse = torch.cat([probe_x, fit.x[rows]]).unique(dim=0, return_inverse=True)
        inverse = inverse.numpy()
        t_all, y_all = inverse[len(probe_x):], fit.y[rows].numpy().astype(float)
        train, first = np.unique(t_all, return_index=True)
        y = y_all[first]
        for t, label in zip(t_all, y_all):  # a repeated training input must carry one label
            if y[np.searchsorted(train, t)] != label:
                raise ValueError("the training data labels one input both ways: no function fits it")
        return cls(Judge.of(world), x.numpy().astype(np.float64), inverse[: len(probe_x)], train, np.sign(y), threshold, fit_threshold)

    def conditional(self, variances: LayerVariances, jitter: float = 1e-6) -> Conditional:
        return Conditional.of(nngp_kernel(self.x, variances), self.train, self.y, jitter)


def judge_signs(problem: Problem, signs: torch.Tensor | np.ndarray, block: int = 2048) -> pd.DataFrame:
    """Verdicts of sign patterns over the distinct inputs (N, U): the lab's rule (`verdict_rows`, which
    `deception.derive` uses) on the probe decisions with training accuracy 1.0, and the soft verdicts."""
    j = problem.judge
    # per-cell agreement as one matmul: the same numbers as Judge.agreement, whose np.add.at took 0.8 ms
    # per sample on bitworld (tested equal in tests/measure/test_counting.py)
    member = np.zeros((j.n_probe, j.n_cells), np.float32)
    member[np.arange(j.n_probe), j.member] = 1.0
    member /= member.sum(0, keepdims=True)
    member_t = torch.from_numpy(member)
    templates = torch.from_numpy(j.templates.astype(np.float32))
    out = []
    signs = torch.as_tensor(signs)
    for start in range(0, len(signs), block):
        codes = signs[start : start + block][:, problem.probe].float()  # (B, n_probe)
        agree = torch.einsum("bmc,mk->bkc", (codes[:, :, None] == templates[None]).float(), member_t).numpy()
        rows = verdict_rows(agree, np.ones(len(codes)), j.halves, problem.threshold, problem.fit_threshold)
        for k, v in soft_columns(posterior(agree, j.halves)).items():
            rows[k] = v
        out.append(rows)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["verdict", *SOFT.values()])


def _bits(p: float) -> float:
    return -math.log2(p) if p > 0 else math.inf


def shares(source: str, judged: pd.DataFrame, ess: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per verdict: count, n, p, Wilson interval (with n = the verdict's effective sample size
    when `ess` gives one), the mean soft probability, and -log2 of p and of the interval's ends."""
    n = len(judged)
    rows = []
    for v in VERDICTS:
        k = int((judged.verdict == v).sum()) if n else 0
        p = k / n if n else math.nan
        e = float(ess.get(v, n)) if ess else float(n)
        lo, hi = wilson(p * e, e) if n else (math.nan, math.nan)
        soft = float(judged[SOFT[v]].mean()) if n and v in SOFT and SOFT[v] in judged else math.nan
        rows.append({"source": source, "verdict": v, "count": k, "n": n, "ess": e, "p": p, "low": float(lo), "high": float(hi), "soft": soft,
                     "bits": _bits(p), "bits_low": _bits(float(hi)), "bits_high": _bits(float(lo))})
    return pd.DataFrame(rows, columns=COLUMNS)


def chain_ess(judged: pd.DataFrame, chains: int, steps: int) -> dict[str, float]:
    """ESS of each verdict's indicator over the chains; a verdict never (or always) seen gets the
    smallest ESS of the statistics that vary (the indicators and the half scores): its interval is then
    no narrower than the worst-mixing statistic's."""
    stats = {v: (judged.verdict == v).to_numpy(float) for v in VERDICTS}
    stats.update({c: judged[c].to_numpy(float) for c in judged.columns if c.startswith("score_")})
    ess = {k: effective_sample_size(s.reshape(chains, steps)) for k, s in stats.items()}
    finite = [e for e in ess.values() if e == e]
    floor = min(finite) if finite else float(chains)
    return {k: (e if e == e else floor) for k, e in ess.items()}


def drift(judged: pd.DataFrame, chains: int, steps: int) -> float:
    """The largest |z| over the verdict indicators and half scores between the first and the second half
    of the kept steps (each half's standard error from its own ESS): a stationarity check, since an ESS
    computed within chains cannot see a burn-in that was too short. Near or below 3 when stationary."""
    worst, half = 0.0, steps // 2
    cols = [judged.verdict.to_numpy() == v for v in VERDICTS] + [judged[c].to_numpy(float) for c in judged.columns if c.startswith("score_")]
    for x in cols:
        x = np.asarray(x, float).reshape(chains, steps)
        a, b = x[:, :half], x[:, half:]
        ea, eb = effective_sample_size(a), effective_sample_size(b)
        if ea != ea or eb != eb:
            continue
        se = math.sqrt(a.var() / ea + b.var() / eb)
        if se > 0:
            worst = max(worst, abs(a.mean() - b.mean()) / se)
    return worst


@dataclass
class Posterior:
    """P_B(class | S) from the NNGP: the table rows (source "nngp"), the judged samples and the diagnostics."""

    table: pd.DataFrame
    judged: pd.DataFrame
    chains: Chains
    ess: dict[str, float]
    drift_z: float  # `drift`: first vs second half of the kept steps
    seconds: float


def nngp_classes(problem: Problem, variances: LayerVariances, *, chains: int = 500, steps: int = 200, burn_in: int = 300,
                 thin: int = 1, seed: int = 0, jitter: float = 1e-6) -> Posterior:
    """P_B(class | S) by elliptical slice sampling: chains x steps posterior samples after burn-in."""
    t0 = time.perf_counter()
    with one_thread():
        cond = problem.conditional(variances, jitter)
        run = elliptical_slice(cond, chains, steps, burn_in, seed, thin)
        judged = judge_signs(problem, run.signs)
    ess = chain_ess(judged, chains, steps)
    return Posterior(shares("nngp", judged, ess), judged, run, ess, drift(judged, chains, steps), time.perf_counter() - t0)


def nngp_rejection(problem: Problem, variances: LayerVariances, draws: int, seed: int = 0, jitter: float = 1e-6) -> tuple[pd.DataFrame, int]:
    """The same posterior by rejection from the NNGP prior (exact; only for few conditioned inputs)."""
    with one_thread():
        signs, _ = rejection(problem.conditional(variances, jitter), draws, seed)
        return shares("nngp-rejection", judge_signs(problem, signs)), len(signs)


def naive_classes(problem: Problem, samples: int, seed: int = 0) -> pd.DataFrame:
    """The naive count: uniform over Boolean functions on the inputs that agree with S."""
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (samples, len(problem.x)), generator=gen).float() * 2 - 1
    signs[:, problem.train] = torch.from_numpy(problem.y.astype(np.float32))
    with one_thread():
        return shares("naive", judge_signs(problem, signs))


def naive_half_tail(problem: Problem, half: str = "deployment") -> float:
    """log2 of the naive count's probability that a half's score against ANY one template reaches the
    threshold, exactly: with every decision of the half a fair coin (the deployment half holds no training
    input), the agreement count of cell c is Binomial(n_c, 1/2) whatever the template, so the score (the
    mean of k_c / n_c over the half's cells) has one distribution for internal, corrigible and proxy alike.
    It bounds P_naive(verdict_deployment = X) for each X from above: the naive count cannot tell the
    classes apart on the deployment half. Computed by convolving the cells' pmfs on the lattice of
    multiples of 1 / lcm(n_c) (scipy has no distribution for a sum of scaled binomials)."""
    from scipy import stats

    j = problem.judge
    mask = getattr(j.halves, half)
    fixed = set(problem.probe[np.isin(problem.probe, problem.train)].tolist())
    sizes = [int(s) for s, m in zip(j.halves.sizes, mask) if m]
    cells = [c for c, m in enumerate(mask) if m]
    if any(bool(set(problem.probe[j.member == c].tolist()) & fixed) for c in cells):
        raise ValueError(f"the {half} half holds training inputs: its decisions are not all coins")
    lcm = math.lcm(*sizes)
    log_pmf = np.array([0.0])  # log of the lattice pmf, summed over cells
    for n in sizes:
        step = lcm // n
        cell = np.full(n * step + 1, -np.inf)
        cell[::step] = stats.binom.logpmf(np.arange(n + 1), n, 0.5)
        # convolution in log space would need logsumexp per lattice point; plain floats underflow only
        # far below the threshold's tail, so shift by the max and convolve
        a, b = np.exp(log_pmf - log_pmf.max()), np.exp(cell - cell.max())
        log_pmf = np.log(np.maximum(np.convolve(a, b), 1e-320)) + log_pmf.max() + cell.max()
    lattice = np.arange(len(log_pmf)) / (lcm * len(sizes))  # the half score at each lattice point
    tail = log_pmf[lattice >= problem.threshold - 1e-6]
    from scipy.special import logsumexp

    return float(logsumexp(tail) / math.log(2))
