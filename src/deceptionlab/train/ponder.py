"""Training early-exit (ponder) ensembles through a curriculum of phases, with autograd.

Phases and head data are the trainer's (`Phase`, `HeadData`); each member draws its own minibatches
from its own generator, in blocks of `BLOCK` steps, as in `train.trainer`, so a member's data order
does not depend on the ensemble. `beta` is per member, so one ensemble is a whole sweep over beta.
"""

from __future__ import annotations

import torch

from ..models.ponder import PonderEnsemble, ponder_loss
from . import optim
from .trainer import BLOCK, Phase, _draw


def train_ponder(
    model: PonderEnsemble,
    phases: list[Phase],
    *,
    beta: torch.Tensor,
    penalty: str = "layers",
    lr: float = 1e-3,
    batch_size: int = 32,
    data_generators: list[torch.Generator],
) -> torch.Tensor:
    """Train `model` in place with Adam; returns each member's mean loss over the last phase (N,)."""
    params = model.parameters()
    opt = optim.Adam(params, lr)
    beta = beta.float()
    flush = torch.set_flush_denormal(True)  # denormal floats (tiny Adam moments) are ~40x slower
    try:
        return _run(model, phases, opt, params, beta, penalty, batch_size, data_generators)
    finally:
        if flush:
            torch.set_flush_denormal(False)


def _run(model, phases, opt, params, beta, penalty, batch_size, data_generators) -> torch.Tensor:
    last = torch.full((model.n_members,), float("nan"))
    for phase in phases:
        if phase.steps == 0 or not phase.heads:
            continue
        xs = torch.cat([h.x for h in phase.heads])
        ys = torch.cat([h.y for h in phase.heads]).float()
        sizes = [len(h.x) for h in phase.heads]
        offsets = torch.tensor([0] + sizes[:-1]).cumsum(0).tolist()
        head = torch.cat([torch.full((batch_size,), h.head) for h in phase.heads])  # (R,)
        # a head's loss weight scales its rows; the mean over R rows keeps a step's size independent
        # of how many heads train in the phase
        weight = torch.cat([torch.full((batch_size,), h.weight) for h in phase.heads])
        total, done = torch.zeros(model.n_members), 0
        while done < phase.steps:
            k = min(BLOCK, phase.steps - done)
            block = _draw(data_generators, k, batch_size, sizes, offsets)  # (N, k, R)
            for s in range(k):
                idx = block[:, s]
                loss = ponder_loss(model.forward(xs[idx]), ys[idx], head, beta, penalty, row_weight=weight)
                grads = torch.autograd.grad(loss.sum(), params)  # members are independent: sum = per-member grads
                with torch.no_grad():
                    opt.step(list(grads))
                total += loss.detach()
            done += k
        last = total / phase.steps
    return last
