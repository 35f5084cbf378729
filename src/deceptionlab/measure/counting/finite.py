"""P_B(class | S) at finite width: posterior samples of the lab's actual networks, not their NNGP limit.

The posterior is the init prior over the weights restricted to the networks that fit the training data:
sign(f(x_i)) = y_i at every conditioned training input. The lab's init (`MLPEnsemble.init`) draws each
weight and bias from U(-b, b), b = 1/sqrt(fan_in). Written through standard-normal latents,
    w = b * erf(z / sqrt(2)),  z ~ N(0, 1)   (2 Phi(z) - 1 is uniform on (-1, 1)),
the prior is N(0, I) over z and the posterior is N(0, I) times the indicator of the fit set: exactly
the setting of elliptical slice sampling (Murray, Adams and MacKay 2010), which leaves it invariant
with no step size to tune (`sampler.ess_step` is the same move on the NNGP's training latents; here the
likelihood is a function of the network, so the move is written for any log-likelihood).

Chains start from prior draws, infeasible: a tempered phase first (log L = -beta * the mean hinge
relu(-y f) over the training inputs in units of the prior's logit scale, beta raised geometrically),
and each chain switches to the exact indicator as soon as it fits; only then does its burn-in begin.
The tempered phase only finds a start: the samples kept come from the exact chain after burn-in, and
`classes.drift` (first vs second half) checks that the start is forgotten. Why not start from trained
networks: a start at SGD's solutions would bias a comparison with P_SGD towards agreement if the chains
mixed slowly, which is the thing under test.

`network_rejection` samples the same posterior by drawing networks from the init directly (uniform, not
through the latents) and keeping those that fit: exact, feasible only when few rows are conditioned on,
and an independent check of the latent transform (tests/measure/test_counting_finite.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .classes import Problem, chain_ess, drift, judge_signs, shares
from .sampler import one_thread, slice_on_ellipses

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Networks:
    """The lab's MLP (`depth` ReLU layers of `width`, one policy readout) as a function of N(0, I) latents."""

    n_in: int
    depth: int
    width: int
    weight_scale: float = 1.0  # weight variances times this (as `LayerVariances.scaled`): bounds times its root

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [(self.n_in if i == 0 else self.width, self.width) for i in range(self.depth)] + [(self.width if self.depth else self.n_in, 1)]

    @property
    def dim(self) -> int:
        return sum(fi * fo + fo for fi, fo in self.shapes)

    def params(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Latents (C, dim) -> per layer (W (C, fan_in, fan_out), b (C, 1, fan_out)), distributed as the init."""
        u, out, at = torch.erf(z / SQRT2), [], 0
        for fi, fo in self.shapes:
            bound = 1.0 / math.sqrt(fi)
            w = u[:, at : at + fi * fo].reshape(-1, fi, fo) * (bound * math.sqrt(self.weight_scale))
            at += fi * fo
            b = u[:, at : at + fo].reshape(-1, 1, fo) * bound
            at += fo
            out.append((w, b))
        return out

    def logits(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The policy logit of each network on each input: z (C, dim), x (R, n_in) -> (C, R)."""
        layers = self.params(z)
        h = x.unsqueeze(0).expand(len(z), *x.shape)
        for w, b in layers[:-1]:
            h = torch.bmm(h, w).add_(b).relu_()
        w, b = layers[-1]
        return torch.bmm(h, w).add_(b).squeeze(-1)


@dataclass
class FinitePosterior:
    """P_B(class | S) of the networks themselves: table rows (source "finite"), samples, diagnostics."""

    table: pd.DataFrame
    judged: pd.DataFrame
    signs: torch.Tensor  # (chains * steps, U) int8, chain-major
    chains: int
    steps: int
    ess: dict[str, float]
    drift_z: float
    proposals_per_step: float  # of the exact phase
    stuck: int  # exact-phase chain-steps kept where they were after MAX_SHRINK shrinks
    tempered_steps: int  # steps until every chain fitted (the start's search)
    dropped: int  # chains that never fitted within the tempered phase (left out)
    seconds: float


def _ess_move(z: torch.Tensor, loglik, gen: torch.Generator) -> tuple[torch.Tensor, int, int]:
    """One elliptical slice step of every chain z (C, D) under N(0, I) prior and `loglik(z, rows) -> (len(rows),)`.
    Returns (new z, proposals evaluated, chains kept in place after MAX_SHRINK)."""
    rows = torch.arange(len(z))
    thresh = loglik(z, rows) + torch.log(torch.rand(len(z), generator=gen))
    nu = torch.randn(z.shape, generator=gen)
    return slice_on_ellipses(z, nu, lambda prop, pending: loglik(prop, pending) > thresh[pending], gen)


def finite_classes(problem: Problem, nets: Networks, *, chains: int = 200, steps: int = 100, burn_in: int = 200, thin: int = 1,
                   seed: int = 0, max_tempered: int = 3000) -> FinitePosterior:
    """P_B(class | S) of finite networks by elliptical slice sampling of their weight latents (module doc)."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(problem.x.astype(np.float32))
    x_t, y = x_all[problem.train], torch.from_numpy(problem.y.astype(np.float32))
    with one_thread():
        z = torch.randn(chains, nets.dim, generator=gen)
        scale = float(nets.logits(z[: min(chains, 64)], x_t).std()) or 1.0  # the prior's logit scale: the hinge's unit
        beta = torch.full((chains,), 1.0)
        exact = torch.zeros(chains, dtype=torch.bool)

        def loglik(zz: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            margin = nets.logits(zz, x_t) * y
            fits = (margin > 0).all(1)
            hinge = torch.relu(-margin).mean(1) / scale
            tempered = -beta[rows] * hinge
            return torch.where(exact[rows], torch.where(fits, 0.0, -math.inf), tempered)

        tempered_steps = 0
        while tempered_steps < max_tempered:
            fits = (nets.logits(z, x_t) * y > 0).all(1)
            exact |= fits
            if bool(exact.all()):
                break
            z, _, _ = _ess_move(z, loglik, gen)
            beta = torch.where(exact, beta, beta * 1.02)  # geometric: 1 to ~4e25 over 3,000 steps
            tempered_steps += 1
        dropped = int((~exact).sum())
        if dropped == chains:
            raise ValueError(f"no chain fitted the {len(problem.train)} training inputs within {max_tempered} tempered steps")
        z, beta = z[exact], beta[exact]
        exact = exact[exact]
        kept, proposals, stuck = [], 0, 0
        for step in range(burn_in + steps * thin):
            z, p, s = _ess_move(z, loglik, gen)
            proposals, stuck = proposals + p, stuck + s
            if step >= burn_in and (step - burn_in) % thin == thin - 1:
                kept.append(torch.where(nets.logits(z, x_all) > 0, 1, -1).to(torch.int8))  # as the evaluator: logit 0 decides -1
        n = len(z)
        signs = torch.stack(kept, 1).reshape(n * steps, len(problem.x))
        judged = judge_signs(problem, signs)
    ess = chain_ess(judged, n, steps)
    total = burn_in + steps * thin
    return FinitePosterior(shares("finite", judged, ess), judged, signs, n, steps, ess, drift(judged, n, steps), proposals / (n * total),
                           stuck, tempered_steps, dropped, time.perf_counter() - t0)


def network_rejection(problem: Problem, nets: Networks, draws: int, seed: int = 0, block: int = 2048) -> tuple[torch.Tensor, int]:
    """Networks drawn by the lab's prior code (`models.ensemble.random_ensemble`: U(+-b) per weight and bias,
    not through the latents), kept where they fit the conditioned training inputs: (accepted signs on every
    distinct input (A, U), draws)."""
    from ...models.ensemble import random_ensemble

    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(problem.x.astype(np.float32))
    y = torch.from_numpy(problem.y.astype(np.float32))
    kept = []
    with one_thread():
        for start in range(0, draws, block):
            model = random_ensemble(nets.n_in, nets.depth, nets.width, 1, min(block, draws - start), gen)
            for w in model.params[0::2]:
                w.mul_(math.sqrt(nets.weight_scale))
            f = model.logits(x_all)[..., 0]
            fit = ((f[:, problem.train] * y) > 0).all(1)
            kept.append(torch.where(f[fit] > 0, 1, -1).to(torch.int8))
    return torch.cat(kept), draws
