"""P_B(class | S) on bitworld: the batched elliptical slice sampler against plain rejection from the
NNGP prior and a reference one-chain elliptical slice loop (numpy, as the algorithm is written in
Murray et al. 2010), in the same run (the machine is shared: ratios, not absolute times, compare).

For each conditioning (all 256 training inputs, and a few rows where rejection accepts) it prints
samples per second of the training latents (the sampler's own cost), effective samples per second
of the rarest-mixing verdict statistic, and rejection's accepted draws per second.

    PYTHONPATH=src python benchmarks/bench_counting.py [--chains 500] [--steps 200] [--burn-in 300] [--rows 256,8,4]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from deceptionlab.core.stats import wilson
from deceptionlab.measure.counting import LayerVariances, Problem
from deceptionlab.measure.counting.classes import chain_ess, judge_signs
from deceptionlab.measure.counting.finite import Networks, finite_classes, network_rejection
from deceptionlab.measure.counting.sampler import elliptical_slice, one_thread, rejection
from deceptionlab.worlds import make_world


def reference_ess(chol: np.ndarray, y: np.ndarray, steps: int, seed: int) -> float:
    """One chain, one step at a time, numpy: seconds per step."""
    rng = np.random.default_rng(seed)
    f = np.abs(chol @ rng.standard_normal(len(y))) * y
    t = time.perf_counter()
    for _ in range(steps):
        nu = chol @ rng.standard_normal(len(y))
        theta = rng.uniform(0, 2 * math.pi)
        lo, hi = theta - 2 * math.pi, theta
        while True:
            prop = f * math.cos(theta) + nu * math.sin(theta)
            if (prop * y > 0).all():
                f = prop
                break
            lo, hi = (theta, hi) if theta < 0 else (lo, theta)
            theta = rng.uniform(lo, hi)
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chains", type=int, default=500)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=300)
    ap.add_argument("--rejection-draws", type=int, default=100_000)
    ap.add_argument("--rows", default="256,8,4", help="training rows conditioned on (256: all of bitworld's)")
    ap.add_argument("--finite-chains", type=int, default=100, help="chains of the finite-width network sampler (0: skip it)")
    ap.add_argument("--finite-steps", type=int, default=100)
    ap.add_argument("--finite-burn-in", type=int, default=100)
    args = ap.parse_args()
    world = make_world("bitworld", {})
    v = LayerVariances.torch_default(world.input_dim, 2, 64)
    print(f"bitworld, 2x64 MLP's NNGP; {args.chains} chains x {args.steps} steps after {args.burn_in}; torch {torch.__version__}, 1 thread")
    for rows in [int(r) for r in args.rows.split(",")]:
        problem = Problem.of(world, fit_rows=None if rows >= 256 else rows)
        with one_thread():
            t = time.perf_counter()
            cond = problem.conditional(v)
            setup = time.perf_counter() - t
            run = elliptical_slice(cond, args.chains, args.steps, args.burn_in, seed=0)
            t = time.perf_counter()
            judged = judge_signs(problem, run.signs)
            judge_s = time.perf_counter() - t
            ess = chain_ess(judged, args.chains, args.steps)
            t = time.perf_counter()
            acc, draws = rejection(cond, args.rejection_draws, seed=1)
            rej_s = time.perf_counter() - t
            ref = reference_ess(cond.chol_t.double().numpy(), cond.y.double().numpy(), 200, seed=2)
        n = len(judged)
        total = run.seconds + judge_s
        lo, hi = wilson(len(acc), draws)
        print(f"\n{len(problem.train)} training inputs: setup {setup:.1f} s (kernel, Cholesky factors)")
        print(f"  elliptical slice (batched): {n:,} samples in {run.seconds:.1f} s + verdicts {judge_s:.1f} s = {n / total:,.0f} samples/s; "
              f"{run.proposals_per_step:.1f} proposals per step, {run.stuck} stuck; min ESS {min(ess.values()):,.0f} "
              f"({min(ess.values()) / total:,.0f} effective samples/s)")
        print(f"  reference one-chain loop: {1 / ref:,.0f} steps/s of the training latents alone "
              f"(batched: {(args.burn_in + args.steps) * args.chains / run.seconds:,.0f} chain-steps/s incl. the probe latents, "
              f"{(args.burn_in + args.steps) * args.chains / run.seconds * ref:.0f}x)")
        rate = len(acc) / rej_s
        print(f"  rejection from the NNGP prior: {len(acc):,} of {draws:,} accepted in {rej_s:.1f} s (acceptance {len(acc) / draws:.3g}, "
              f"95% CI {lo:.2g}-{hi:.2g}): {rate:,.1f} accepted/s; "
              + (f"elliptical slice gives {min(ess.values()) / total / max(rate, 1e-12):,.1f}x the effective samples per second"
                 if len(acc) else f"draws per accepted sample > {1 / hi:,.0f}"))
        if args.finite_chains:
            finite(problem, world, args)


def finite(problem: Problem, world, args) -> None:
    """The finite-width posterior of the 2x64 networks themselves against drawing networks from the init and
    keeping those that fit (the only generic alternative: the constraint rules out HMC's gradients at the
    boundary, and a random-walk Metropolis step on 5,057 latents would need a tuned, tiny step)."""
    nets = Networks(world.input_dim, 2, 64)
    post = finite_classes(problem, nets, chains=args.finite_chains, steps=args.finite_steps, burn_in=args.finite_burn_in, seed=3)
    t = time.perf_counter()
    acc, draws = network_rejection(problem, nets, min(args.rejection_draws, 40_000), seed=4)
    rej_s = time.perf_counter() - t
    lo, hi = wilson(len(acc), draws)
    e = min(post.ess.values())
    print(f"  finite width (2x64 networks, {nets.dim:,} latents): {len(post.judged):,} samples in {post.seconds:.1f} s "
          f"({post.tempered_steps} tempered steps to fit, {post.proposals_per_step:.1f} proposals per step, drift |z| {post.drift_z:.1f}); "
          f"min ESS {e:,.0f} ({e / post.seconds:,.2f} effective samples/s); P(internal) {post.table.set_index('verdict').loc['internal', 'p']:.4f}")
    rate = len(acc) / rej_s
    print(f"  networks from the init, kept when they fit: {len(acc):,} of {draws:,} in {rej_s:.1f} s ({rate:,.1f} accepted/s; "
          + (f"the sampler gives {e / post.seconds / max(rate, 1e-12):,.2f}x the effective samples per second)" if len(acc)
             else f"draws per accepted sample > {1 / hi:,.0f})"))


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    main()
