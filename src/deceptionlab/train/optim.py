"""Per-member optimisers as pure update rules over an ensemble's parameter list.

Updates are elementwise, so every member is optimised independently even though all members step
together. Semantics match `torch.optim.SGD` and `torch.optim.Adam` (L2 weight decay added to the
gradient), which `tests/test_ensemble.py` checks member by member. Hyperparameters travel as one
tensor so that a compiled training step does not recompile when they change.
"""

from __future__ import annotations

import torch

OPTIMIZERS = ("sgd", "adam")


def hyper_tensor(lr: float, momentum: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8) -> torch.Tensor:
    """[lr, momentum, weight_decay, beta1, beta2, eps, t]: t (the step count) is advanced in place."""
    return torch.tensor([lr, momentum, weight_decay, betas[0], betas[1], eps, 0.0], dtype=torch.float64)


def init_state(kind: str, params: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Optimiser buffers: SGD keeps a momentum buffer, Adam the first and second moments."""
    if kind == "sgd":
        return [[torch.zeros_like(p) for p in params]]
    if kind == "adam":
        return [[torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]]
    raise ValueError(f"unknown optimizer {kind!r} (known: {', '.join(OPTIMIZERS)})")


def update(kind: str, params, grads, state, hyper: torch.Tensor) -> None:
    """One step, in place. `hyper[6]` must already hold this step's number (1-based)."""
    lr, momentum, wd, b1, b2, eps, t = (hyper[i].float() for i in range(7))
    for i, (p, g) in enumerate(zip(params, grads)):
        g = g + wd * p
        if kind == "sgd":
            buf = state[0][i]
            buf.mul_(momentum).add_(g)  # torch's first step sets buf = g; buf starts at 0, so the same
            p.sub_(lr * buf)
        else:
            m, v = state[0][i], state[1][i]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).add_((1 - b2) * g * g)
            denom = (v / (1 - b2**t)).sqrt_().add_(eps)
            p.sub_((lr / (1 - b1**t)) * m / denom)
