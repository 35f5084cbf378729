"""The MLP trainer: runs a curriculum of phases on a batched MLP ensemble and logs a trajectory.

It knows nothing of alignment classes. It sees datasets (by head), loss weights, an optimiser and an
`evaluate(model) -> {name: (N, ...) tensor}` callback that it calls at every log checkpoint. Its
step (`mlp_steps`: the compiled kernel or the torch step) runs inside the one phase loop,
`train.loop.run_phases`, which does everything around it.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..models import MLPEnsemble
from . import optim, train_kernel
from .loop import MakeStep, Phase, Stopping, Trajectory, run_phases

FUSE_ABOVE = 100_000  # member-steps from which a chunk uses the compiled (fused) Adam update


def _step(model: MLPEnsemble, opt, xs, ys, idx, block_heads, onehot, rowweight) -> torch.Tensor:
    """One optimisation step of every member. idx: (N, R) rows of the phase pool, in one block of
    batch_size rows per head in block_heads (onehot: (R, H) the same as a matrix); rowweight: (R,)
    loss weight / batch size. Returns per-head loss sums (N, H)."""
    x, y = xs[idx], ys[idx]  # (N, R, n_in), (N, R)
    z, cache = model.forward(x, block_heads)  # (N, R): each row's own head
    yz = y * z
    dz = torch.sigmoid(-yz).mul_(y).mul_(-rowweight)  # d(weighted BCE)/dz
    opt.step(model.backward(cache, dz))
    return F.softplus(-yz) @ onehot


def mlp_steps(model: MLPEnsemble, phases: list[Phase], *, optimizer: str, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
              batch_size: int) -> MakeStep:
    """The MLP family's step for `run_phases`: the compiled kernel's blocks of steps where it computes this
    training (train_kernel.py), else the torch step, with the lab's per-member optimiser."""
    device = model.params[0].device
    n_heads = model.params[-1].shape[-1]
    # compiling the fused update costs seconds once per process: worth it only for long chunks on a
    # CPU (on a GPU the foreach kernels are already few and fast)
    kernel = train_kernel.load() is not None and train_kernel.supports(model.params, optimizer, batch_size)
    fused = not kernel and device.type == "cpu" and model.n_members * sum(p.steps for p in phases) >= FUSE_ABOVE
    opt = optim.make_optimizer(optimizer, model.params, lr, momentum, weight_decay, fused=fused)

    def make_step(phase: Phase, xs: torch.Tensor, ys: torch.Tensor):
        block_heads = [h.head for h in phase.heads]
        onehot = torch.zeros(len(phase.heads) * batch_size, n_heads, device=device)
        rowweight = torch.empty(len(phase.heads) * batch_size, device=device)
        for e, h in enumerate(phase.heads):
            onehot[e * batch_size : (e + 1) * batch_size, h.head] = 1.0
            rowweight[e * batch_size : (e + 1) * batch_size] = h.weight / batch_size
        if kernel:  # steps between checkpoints in one compiled call (train_kernel.py)
            return train_kernel.KernelSteps(model.params, opt, xs, ys, block_heads, rowweight, batch_size)
        return lambda idx: _step(model, opt, xs, ys, idx, block_heads, onehot, rowweight)

    return make_step


def train(
    model: MLPEnsemble,
    phases: list[Phase],
    *,
    optimizer: str,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    batch_size: int,
    data_generators: list[torch.Generator],
    log_every: int,
    evaluate: Callable[[MLPEnsemble], dict[str, torch.Tensor]],
    on_steps: Callable[[int], None] | None = None,
    early_steps: int = 0,
    early_generators: list[torch.Generator] | None = None,
    stopping: Stopping | None = None,
) -> Trajectory:
    """Train `model` in place through `phases`; log `evaluate` at step 0, every `log_every` steps,
    at every phase boundary and at the end.

    An early intervention: with `early_steps` > 0, the minibatches of the first `early_steps` steps
    are drawn from `early_generators` instead, and every later minibatch is the one the unperturbed
    run draws (the main generators are consumed the same way), so two such runs differ only early.
    `stopping`: early stopping, member by member, in the last phase (`loop.Stopping`)."""
    make_step = mlp_steps(model, phases, optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay, batch_size=batch_size)
    return run_phases(
        model.params, phases, make_step, n_heads=model.params[-1].shape[-1], batch_size=batch_size, data_generators=data_generators,
        log_every=log_every, evaluate=lambda: evaluate(model), on_steps=on_steps,
        early=(early_steps, early_generators) if early_steps > 0 else None, stopping=stopping,
    )
