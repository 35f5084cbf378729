"""The trainer: runs a curriculum of phases on a batched ensemble and logs a trajectory.

It knows nothing of alignment classes. It sees datasets (by head), loss weights, an optimiser and an
`evaluate(model) -> {name: (N, ...) tensor}` callback that it calls at every log checkpoint.

Each member draws its own minibatches from its own generator, in blocks of `BLOCK` steps, so a
member's data order does not depend on the ensemble it is trained in.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..models import MLPEnsemble
from . import optim

BLOCK = 64  # steps of minibatch indices drawn per member at a time
FUSE_ABOVE = 100_000  # member-steps from which a chunk uses the compiled (fused) Adam update


@dataclass(frozen=True)
class HeadData:
    """One head trained in a phase: its readout index, its dataset (x, y) and its loss weight."""

    head: int
    x: torch.Tensor  # (P, n_in)
    y: torch.Tensor  # (P,) in {-1, +1}
    weight: float


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int
    heads: list[HeadData]


@dataclass
class Trajectory:
    """Checkpointed measurements: `values[name]` is (N, T, ...) over the steps in `steps`."""

    steps: list[int] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)
    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def log(self, step: int, phase: str, measured: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.phase.append(phase)
        for k, v in measured.items():
            self.values.setdefault(k, []).append(v.detach().cpu())

    def stacked(self) -> dict[str, torch.Tensor]:
        return {k: torch.stack(v, 1) for k, v in self.values.items()}


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


_malloc_tuned = False


def _keep_freed_memory() -> None:
    """Ask glibc to reuse freed blocks instead of returning them to the OS: each training step frees
    and reallocates the same multi-megabyte activations, and with the default thresholds each
    reallocation page-faults afresh (measured: 15 -> 21 runs/s on bitworld). Linux/glibc only."""
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD, glibc's maximum
    except (OSError, AttributeError):
        pass


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
) -> Trajectory:
    """Train `model` in place through `phases`; log `evaluate` at step 0, every `log_every` steps,
    at every phase boundary and at the end.

    An early intervention: with `early_steps` > 0, the minibatches of the first `early_steps` steps
    are drawn from `early_generators` instead, and every later minibatch is the one the unperturbed
    run draws (the main generators are consumed the same way), so two such runs differ only early."""
    device = model.params[0].device
    n = model.n_members
    # compiling the fused update costs seconds once per process: worth it only for long chunks on a
    # CPU (on a GPU the foreach kernels are already few and fast)
    fused = device.type == "cpu" and n * sum(p.steps for p in phases) >= FUSE_ABOVE
    opt = optim.make_optimizer(optimizer, model.params, lr, momentum, weight_decay, fused=fused)
    traj = Trajectory()
    n_heads = model.params[-1].shape[-1]
    nan_loss = torch.full((n, n_heads), float("nan"), device=device)
    first = next((p.name for p in phases if p.steps and p.heads), "")  # skipped phases never appear
    traj.log(0, first, {**evaluate(model), "train_loss": nan_loss})
    _keep_freed_memory()
    flush = torch.set_flush_denormal(True)  # denormal floats (tiny Adam moments) are ~40x slower
    try:
        early = (early_steps, early_generators) if early_steps > 0 else None
        _run_phases(model, phases, opt, batch_size, data_generators, log_every, evaluate, on_steps, traj, early)
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return traj


def _draw(generators, k, batch_size, sizes, offsets, device="cpu") -> torch.Tensor:
    """(N, k, R) row indices: k steps of a minibatch per head, member by member."""
    return torch.stack(
        [torch.cat([torch.randint(sz, (k, batch_size), generator=g) + off for sz, off in zip(sizes, offsets)], 1) for g in generators]
    ).to(device)


@torch.no_grad()
def _run_phases(model, phases, opt, batch_size, data_generators, log_every, evaluate, on_steps, traj, early=None) -> None:
    device = model.params[0].device
    n, n_heads = model.n_members, model.params[-1].shape[-1]
    step = 0
    for phase in phases:
        if phase.steps == 0 or not phase.heads:
            continue
        xs = torch.cat([h.x for h in phase.heads]).to(device)
        ys = torch.cat([h.y for h in phase.heads]).float().to(device)
        sizes = [len(h.x) for h in phase.heads]
        offsets = torch.tensor([0] + sizes[:-1]).cumsum(0).tolist()
        block_heads = [h.head for h in phase.heads]
        onehot = torch.zeros(len(phase.heads) * batch_size, n_heads, device=device)
        rowweight = torch.empty(len(phase.heads) * batch_size, device=device)
        for e, h in enumerate(phase.heads):
            onehot[e * batch_size : (e + 1) * batch_size, h.head] = 1.0
            rowweight[e * batch_size : (e + 1) * batch_size] = h.weight / batch_size
        loss_sum = torch.zeros(n, n_heads, device=device)
        since = 0
        done = 0
        while done < phase.steps:
            k = min(BLOCK, phase.steps - done)
            block = _draw(data_generators, k, batch_size, sizes, offsets, device)  # (N, k, R)
            if early is not None and step < early[0]:
                swap = min(k, early[0] - step)
                block[:, :swap] = _draw(early[1], swap, batch_size, sizes, offsets, device)
            for s in range(k):
                loss_sum += _step(model, opt, xs, ys, block[:, s], block_heads, onehot, rowweight)
                step += 1
                since += 1
                if step % log_every == 0 or (done + s + 1) == phase.steps:
                    per_head = loss_sum / (since * batch_size)
                    per_head[:, onehot.sum(0) == 0] = float("nan")  # heads not trained in this phase
                    traj.log(step, phase.name, {**evaluate(model), "train_loss": per_head})
                    loss_sum.zero_()
                    since = 0
            done += k
            if on_steps is not None:
                on_steps(k)
