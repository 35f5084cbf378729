"""Linear algebra the lab's probes share."""

from __future__ import annotations

import torch


def spd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve a x = b for batched symmetric positive definite a (..., n, n) (ridge Gram matrices), b (..., n, k).

    By Cholesky rather than `torch.linalg.solve`'s LU: half the work for these matrices, and immune to a
    defect of the CPU build's MKL, whose batched LU (n >= about 200) fails with "Parameter 6 was incorrect on
    entry to SLASWP" and then hangs once torch's intra-op thread count has been set explicitly, to any value
    (reproduced with torch 2.13.0: setting 2 threads on a 2-core machine, then a (32, 257, 257) solve).
    A matrix that is not numerically positive definite (a diverged member: inf or nan activations) gets a
    nan solution, as LU gave it, and the rest of the batch is solved: one member never stops a chunk."""
    chol, info = torch.linalg.cholesky_ex(a)
    x = torch.cholesky_solve(b, chol)
    bad = info != 0
    if bool(bad.any()):
        x[bad] = float("nan")
    return x
