"""Random-network function sampling (Valle-Perez et al. 2019): the lab's sampler against a naive one.

The work: 7-40-40-1 ReLU MLPs with PyTorch's default init on all 128 inputs in {0,1}^7; each draw's
truth table (the output bit [logit > 0] on every input) is counted. DESIGN.md: a naive
implementation does 1e6 draws in about 67 s; the arithmetic alone allows 1e7 in about a minute.
  naive   one nn.Sequential per draw (built and initialised by PyTorch), its truth table packed to
          bytes and counted in a dict; timed on --naive-samples draws and extrapolated, with torch's
          default threads and with one thread (the better one is the baseline)
  lab     deceptionlab.measure.sample_functions on --samples draws: drawing, truth tables, counts
          (the compiled kernel, `measure/prior_kernel.py`, when a C compiler exists); then, timed
          apart, the LZ complexity of the 1e5 most frequent functions (its default)
  torch   the same sampler with the kernel switched off (DECEPTIONLAB_NO_KERNEL=1): the batched-matmul
          program, on --torch-samples draws
Both run in this process, one after the other; the load average is printed, since the machine is
shared and its other users' work shows in every figure.

    python benchmarks/bench_prior.py [--samples 1e7] [--torch-samples 1e6] [--naive-samples 2e4] [--block 512]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

import torch

from deceptionlab.measure import lz_complexity, prior_kernel
from deceptionlab.measure import prior as P


def naive(samples: int, x: torch.Tensor) -> Counter:
    counts: Counter = Counter()
    with torch.no_grad():
        for _ in range(samples):
            net = torch.nn.Sequential(torch.nn.Linear(7, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40), torch.nn.ReLU(), torch.nn.Linear(40, 1))
            counts[(net(x)[:, 0] > 0).numpy().tobytes()] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=float, default=1e7)
    ap.add_argument("--torch-samples", type=float, default=1e6)
    ap.add_argument("--naive-samples", type=float, default=2e4)
    ap.add_argument("--block", type=int, default=P.BLOCK)
    args = ap.parse_args()
    x = P.boolean_inputs(7)
    n, n_naive = int(args.samples), int(args.naive_samples)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}")

    t = time.perf_counter()
    df = P.sample_functions(x, [40, 40], n, "torch", seed=0, block=args.block, complexity_for=0)
    lab_s = time.perf_counter() - t
    lab = n / lab_s
    print(f"lab:   {n:,} draws in {lab_s:.1f} s = {lab:,.0f} draws/s ({len(df):,} distinct functions; "
          f"top two {df.function[0][:4]}.. {df.frequency[0]:.4f}, {df.function[1][:4]}.. {df.frequency[1]:.4f})")
    t = time.perf_counter()
    k = min(len(df), 100_000)
    df.loc[: k - 1, "complexity"] = [lz_complexity(P.function_bits(f, 128)) for f in df.function[:k]]
    print(f"       LZ complexity of the {k:,} most frequent functions: {time.perf_counter() - t:.1f} s more")

    kernel = prior_kernel.load() is not None
    os.environ["DECEPTIONLAB_NO_KERNEL"] = "1"
    prior_kernel.load.cache_clear()
    n_torch = int(args.torch_samples)
    t = time.perf_counter()
    P.sample_functions(x, [40, 40], n_torch, "torch", seed=0, block=args.block, complexity_for=0)
    torch_rate = n_torch / (time.perf_counter() - t)
    print(f"torch: {n_torch:,} draws in {n_torch / torch_rate:.1f} s = {torch_rate:,.0f} draws/s (the batched-matmul program, kernel off)")
    print(f"ratio: the lab {'(compiled kernel)' if kernel else '(NO compiler: torch program)'} is {lab / torch_rate:.2f}x the torch program")

    rates = {}
    for threads in (torch.get_num_threads(), 1):  # the naive loop's tiny ops may do better on one thread
        torch.set_num_threads(threads)
        t = time.perf_counter()
        counts = naive(n_naive, x)
        naive_s = time.perf_counter() - t
        rates[threads] = n_naive / naive_s
        print(f"naive ({threads} thread{'s' if threads > 1 else ''}): {n_naive:,} draws in {naive_s:.1f} s = {rates[threads]:,.0f} draws/s "
              f"({len(counts):,} distinct functions); 1e6 would take {1e6 / rates[threads]:.0f} s")
    slow = max(rates.values())
    corr = P.complexity_correlation(df)
    print(f"ratio: the lab samples {lab / slow:.1f}x faster than the naive loop (its better thread setting)")
    print(f"1e7 draws: {1e7 / lab:.1f} s for the lab ({'measured' if n == 10**7 else 'extrapolated'}); "
          f"log P vs LZ: Spearman {corr['spearman']:.3f}, Pearson {corr['pearson']:.3f}; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    main()
