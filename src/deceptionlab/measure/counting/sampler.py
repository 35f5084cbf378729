"""Exact samples of a Gaussian process conditioned on the signs of its latents at the training inputs.

The posterior of the NNGP given sign(f(x_i)) = y_i on the training inputs is the prior N(0, K)
truncated to an orthant of the training latents f_T, times the Gaussian conditional of the other
latents f_F given f_T. So a sample is two steps:
1. f_T from the truncated Gaussian, by elliptical slice sampling (Murray, Adams and MacKay 2010) with
   the indicator of the orthant as the likelihood: from a feasible f, draw nu ~ N(0, K_TT), and move
   along the ellipse f cos t + nu sin t, shrinking the bracket of t towards 0 until the point is
   feasible. It leaves the truncated Gaussian invariant and never rejects a whole step; every chain
   starts from a prior draw reflected into the orthant (|g| * y: feasible, of typical scale).
2. f_F = A f_T + L_S e, e ~ N(0, I), with A = K_FT K_TT^-1 and L_S the Cholesky factor of the
   conditional covariance K_FF - A K_TF: exact given f_T, batched as two matmuls.
Many chains run at once, as tensors with the chain axis first. `rejection` samples the same
posterior by drawing f from the prior and keeping the draws whose signs fit: exact, and feasible only
when few inputs are conditioned on.

The effective sample size of a statistic uses the autocorrelation pooled over chains, summed with
Geyer's initial positive sequence (no library in the lab's environment computes it: arviz is not a
dependency).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .kernel import jittered_cholesky

MAX_SHRINK = 200  # bracket halvings in expectation; a chain still infeasible after this keeps its point (counted)


@contextmanager
def one_thread():
    """Run torch single-threaded: the sampler's ops are small, and on the shared 2-core machine two
    OpenMP threads made them 40x slower (35 s vs 0.9 s for 200 chains x 20 steps), as in measure.prior."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)




@dataclass
class Conditional:
    """The GP over distinct inputs split into training latents T (signs known) and free latents F."""

    chol_t: torch.Tensor  # (T, T) lower Cholesky factor of K_TT (+ jitter)
    a: torch.Tensor  # (F, T): the mean map A = K_FT K_TT^-1
    chol_s: torch.Tensor  # (F, F) lower Cholesky factor of the conditional covariance (+ jitter)
    chol_all: torch.Tensor  # (U, U) factor of the whole kernel, for prior draws (rejection)
    y: torch.Tensor  # (T,) the training signs, +-1
    train: np.ndarray  # (T,) indices of the training latents among the distinct inputs
    free: np.ndarray  # (F,) indices of the others
    jitter: float  # eps added to the diagonal (relative to the mean prior variance)

    @classmethod
    def of(cls, k: np.ndarray, train: np.ndarray, y: np.ndarray, jitter: float = 1e-6) -> "Conditional":
        train = np.asarray(train)
        free = np.setdiff1d(np.arange(len(k)), train)
        l_t, eps = jittered_cholesky(k[np.ix_(train, train)], jitter)
        k_ft = k[np.ix_(free, train)]
        a = torch.cholesky_solve(torch.from_numpy(k_ft.T.copy()), torch.from_numpy(l_t)).numpy().T
        s = k[np.ix_(free, free)] - a @ k_ft.T
        # the same eps on the conditional covariance: its small eigenvalues are the kernel's, less well resolved
        l_s = jittered_cholesky((s + s.T) / 2, eps, relative=False)[0] if len(free) else np.zeros((0, 0))
        l_all, _ = jittered_cholesky(k, jitter)
        f32 = lambda m: torch.from_numpy(np.ascontiguousarray(m, np.float32))
        return cls(f32(l_t), f32(a), f32(l_s), f32(l_all), f32(np.asarray(y, float)), train, free, eps / float(np.mean(np.diag(k))))

    @property
    def n_inputs(self) -> int:
        return len(self.train) + len(self.free)

    def start(self, chains: int, gen: torch.Generator) -> torch.Tensor:
        """Feasible starting latents (chains, T): prior draws reflected into the orthant."""
        g = torch.randn(chains, len(self.y), generator=gen) @ self.chol_t.T
        return g.abs() * self.y

    def complete(self, f_t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Training latents (N, T) -> signs on every distinct input (N, U) in {-1, +1}, the free latents drawn
        from their Gaussian conditional."""
        out = torch.empty(len(f_t), self.n_inputs)
        out[:, self.train] = torch.sign(f_t)
        if len(self.free):
            f_f = f_t @ self.a.T + torch.randn(len(f_t), len(self.free), generator=gen) @ self.chol_s.T
            out[:, self.free] = torch.where(f_f > 0, 1.0, -1.0)  # as the evaluator: logit 0 decides -1
        return out


def shrink(theta: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, pending: torch.Tensor, gen: torch.Generator) -> None:
    """Elliptical slice sampling's bracket step, in place for the `pending` chains: the rejected angle becomes
    the bracket's end on its side of 0, and a new angle is drawn uniformly inside the shrunk bracket."""
    tb = theta[pending]
    neg = tb < 0
    lo[pending] = torch.where(neg, tb, lo[pending])
    hi[pending] = torch.where(neg, hi[pending], tb)
    theta[pending] = lo[pending] + torch.rand(len(pending), generator=gen) * (hi[pending] - lo[pending])


def ess_step(f: torch.Tensor, y: torch.Tensor, chol: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, int, int]:
    """One elliptical slice step of every chain f (C, T) on N(0, chol chol^T) truncated to y * f > 0.
    Returns (new f, proposals evaluated, chains left where they were after MAX_SHRINK shrinks)."""
    nu = torch.randn(len(f), f.shape[1], generator=gen) @ chol.T
    return slice_on_ellipses(f, nu, lambda prop, pending: (prop * y > 0).all(1), gen)


def slice_on_ellipses(f: torch.Tensor, nu: torch.Tensor, accept, gen: torch.Generator) -> tuple[torch.Tensor, int, int]:
    """The shrinking search of elliptical slice sampling, for every chain at once: proposals
    f cos(theta) + nu sin(theta) on each chain's ellipse until `accept(proposals, chains) -> bool mask` takes one
    (the NNGP's sign constraint; the finite-width sampler's slice of its log-likelihood). Returns (new f,
    proposals evaluated, chains left where they were after MAX_SHRINK shrinks)."""
    c = len(f)
    theta = torch.rand(c, generator=gen) * (2 * math.pi)
    lo, hi = theta - 2 * math.pi, theta.clone()
    out = f.clone()
    pending = torch.arange(c)
    proposals = 0
    for _ in range(MAX_SHRINK):
        th = theta[pending]
        prop = f[pending] * torch.cos(th)[:, None] + nu[pending] * torch.sin(th)[:, None]
        ok = accept(prop, pending)
        proposals += len(pending)
        out[pending[ok]] = prop[ok]
        pending = pending[~ok]
        if not len(pending):
            break
        shrink(theta, lo, hi, pending, gen)
    return out, proposals, len(pending)


@dataclass
class Chains:
    """Signs on every distinct input for `steps` kept steps of `chains` chains: (chains * steps, U) int8,
    chain-major (row c * steps + s), with the sampler's counters."""

    signs: torch.Tensor
    chains: int
    steps: int
    burn_in: int
    proposals_per_step: float  # mean proposals per chain and step (1 = no shrinking)
    stuck: int  # chain-steps that kept their point after MAX_SHRINK shrinks
    seconds: float


def elliptical_slice(cond: Conditional, chains: int, steps: int, burn_in: int, seed: int, thin: int = 1) -> Chains:
    """Posterior samples by elliptical slice sampling of the training latents (many chains at once)."""
    import time

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    f = cond.start(chains, gen)
    proposals, stuck, kept = 0, 0, []
    for step in range(burn_in + steps * thin):
        f, p, s = ess_step(f, cond.y, cond.chol_t, gen)
        proposals, stuck = proposals + p, stuck + s
        if step >= burn_in and (step - burn_in) % thin == thin - 1:
            kept.append(cond.complete(f, gen).to(torch.int8))  # int8: 1e5 samples of bitworld in 150 MB, not 600
    signs = torch.stack(kept, 1).reshape(chains * steps, cond.n_inputs)  # (C, S, U) -> chain-major rows
    total = burn_in + steps * thin
    return Chains(signs, chains, steps, burn_in, proposals / (chains * total), stuck, time.perf_counter() - t0)


def rejection(cond: Conditional, draws: int, seed: int, block: int = 4096) -> tuple[torch.Tensor, int]:
    """Prior draws of every latent kept where the training signs fit: (accepted signs (A, U), draws)."""
    gen = torch.Generator().manual_seed(seed)
    kept = []
    for start in range(0, draws, block):
        b = min(block, draws - start)
        f = torch.randn(b, cond.n_inputs, generator=gen) @ cond.chol_all.T
        fit = ((f[:, cond.train] * cond.y) > 0).all(1)
        kept.append(torch.where(f[fit] > 0, 1.0, -1.0))
    return torch.cat(kept), draws


def effective_sample_size(x: np.ndarray) -> float:
    """ESS of a statistic x (chains, steps) pooled over chains: C * S / tau with tau = 1 + 2 sum rho_t,
    rho_t the autocorrelation averaged over chains, summed over Geyer's initial positive sequence
    (pairs rho_2k + rho_2k+1 while positive). NaN for a constant statistic; at most C * S."""
    x = np.asarray(x, float)
    c, s = x.shape
    centred = x - x.mean()
    var = float((centred**2).mean())
    if var <= 0 or s < 2:
        return float("nan") if var <= 0 else float(c * s)
    n = 1 << (2 * s - 1).bit_length()
    spec = np.fft.rfft(centred, n, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), n, axis=1)[:, :s].mean(0) / s  # biased estimator, per lag
    rho = acov / acov[0]
    tau = -1.0  # 1 + 2 sum_{t>=1} rho_t = -1 + 2 sum_{t>=0} rho_t, summed in Geyer's pairs
    for k in range(0, s - 1, 2):
        pair = rho[k] + rho[k + 1]
        if pair <= 0:
            break
        tau += 2 * pair
    return float(min(c * s, c * s / max(tau, 1e-12)))
