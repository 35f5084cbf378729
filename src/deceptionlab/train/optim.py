"""Per-member optimisers over an ensemble's parameter list.

Updates are elementwise, so every member is optimised independently even though all members step
together. Semantics match `torch.optim.SGD` and `torch.optim.Adam` (L2 weight decay added to the
gradient), which `tests/models/test_ensemble.py` checks member by member. Each update is a handful of
`torch._foreach_*` calls over the whole parameter list.
"""

from __future__ import annotations

import math
import os
import warnings

import torch

OPTIMIZERS = ("sgd", "adam")


class SGD:
    def __init__(self, params: list[torch.Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.buf = [torch.zeros_like(p) for p in params] if momentum else None

    def step(self, grads: list[torch.Tensor]) -> None:
        if self.weight_decay:
            torch._foreach_add_(grads, self.params, alpha=self.weight_decay)
        if self.buf is not None:  # torch's first step sets buf = g; ours starts at 0, the same
            torch._foreach_mul_(self.buf, self.momentum)
            torch._foreach_add_(self.buf, grads)
            grads = self.buf
        torch._foreach_add_(self.params, grads, alpha=-self.lr)


def _adam_update(params, grads, m, v, lr_t, bc2_sqrt, b1: float, b2: float, eps: float, wd: float):
    for p, g, m_, v_ in zip(params, grads, m, v):
        if wd:
            g = g + wd * p
        m_.lerp_(g, 1 - b1)
        v_.mul_(b2).addcmul_(g, g, value=1 - b2)
        p.sub_(lr_t * m_ / (v_.sqrt() / bc2_sqrt + eps))


_fused_adam = None


def fused_adam():
    """Adam's update compiled (torch.compile, C++ on a CPU) into one pass over memory; the eager
    update makes eight, and for many small networks memory traffic is what Adam costs. None when
    compilation is switched off (DECEPTIONLAB_COMPILE=0) or fails on this machine."""
    global _fused_adam
    if _fused_adam is None:
        _fused_adam = False
        if os.environ.get("DECEPTIONLAB_COMPILE", "1") != "0":
            try:
                fn = torch.compile(_adam_update, dynamic=True)
                p = [torch.zeros(3, 2)]
                fn(p, [torch.ones(3, 2)], [torch.zeros(3, 2)], [torch.zeros(3, 2)], torch.tensor(0.1), torch.tensor(1.0), 0.9, 0.999, 1e-8, 0.0)
                _fused_adam = fn
            except Exception as e:  # no compiler, unsupported platform: the eager path is exact too
                warnings.warn(f"fused Adam unavailable ({type(e).__name__}); using the eager update", stacklevel=2)
    return _fused_adam or None


class Adam:
    def __init__(
        self, params: list[torch.Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, fused: bool = False
    ):
        self.params, self.lr, self.betas, self.eps, self.weight_decay = params, lr, betas, eps, weight_decay
        self.fused = fused_adam() if fused else None
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.denom = [torch.empty_like(p) for p in params]  # reused: allocating it each step costs more than the math
        self.t = 0

    def step(self, grads: list[torch.Tensor]) -> None:
        b1, b2 = self.betas
        self.t += 1
        if self.weight_decay:
            torch._foreach_add_(grads, self.params, alpha=self.weight_decay)
        if self.fused is not None:  # step-dependent scalars as tensors, so the compiled code is reused
            lr_t = torch.tensor(self.lr / (1 - b1**self.t), device=self.params[0].device)
            bc2 = torch.tensor(math.sqrt(1 - b2**self.t), device=self.params[0].device)
            self.fused(self.params, grads, self.m, self.v, lr_t, bc2, b1, b2, self.eps, self.weight_decay)
            return
        torch._foreach_lerp_(self.m, grads, 1 - b1)
        torch._foreach_mul_(self.v, b2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - b2)
        for v, d in zip(self.v, self.denom):
            torch.sqrt(v, out=d)
        torch._foreach_div_(self.denom, math.sqrt(1 - b2**self.t))
        torch._foreach_add_(self.denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, self.denom, value=-self.lr / (1 - b1**self.t))


def make_optimizer(name: str, params: list[torch.Tensor], lr: float, momentum: float = 0.0, weight_decay: float = 0.0, fused: bool = False):
    if name == "sgd":
        return SGD(params, lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return Adam(params, lr, weight_decay=weight_decay, fused=fused)
    raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
