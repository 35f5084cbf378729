"""Training early-exit (ponder) ensembles through a curriculum of phases, with autograd.

Its step (`ponder_steps`) runs inside the one phase loop, `train.loop.run_phases` (minibatches per
member, checkpoints, early stopping), as every family's does, so a member's data order does not depend on the ensemble. `beta` is per member, so one
ensemble can be a whole sweep over beta.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..models.ponder import PonderEnsemble, ponder_terms
from . import optim
from .loop import MakeStep, Phase, Stopping, Trajectory, run_phases


def ponder_steps(model: PonderEnsemble, *, beta: torch.Tensor, penalty: str = "layers", optimizer: str = "adam", lr: float = 1e-3,
                 momentum: float = 0.0, weight_decay: float = 0.0, batch_size: int = 32, last: dict | None = None) -> MakeStep:
    """The early-exit family's step for `run_phases` (autograd, the lab's per-member optimiser). `last`, when
    given, receives the latest phase's summed loss per member ("total", penalty included) and its steps."""
    params = model.parameters()
    opt = optim.make_optimizer(optimizer, params, lr, momentum, weight_decay)
    beta = beta.float()
    n_heads = model.params["out_w"][0].shape[-1]
    last = {} if last is None else last

    def make_step(phase: Phase, xs: torch.Tensor, ys: torch.Tensor):
        head = torch.cat([torch.full((batch_size,), h.head) for h in phase.heads]).to(xs.device)  # (R,)
        # a head's loss weight scales its rows; the mean over R rows keeps a step's size independent
        # of how many heads train in the phase
        weight = torch.cat([torch.full((batch_size,), h.weight) for h in phase.heads]).to(xs.device)
        onehot = F.one_hot(head, n_heads).float()  # (R, heads)
        last.update(total=torch.zeros(model.n_members, device=xs.device), steps=phase.steps)

        def step(idx: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                loss, bce = ponder_terms(model.forward(xs[idx]), ys[idx], head, beta, penalty, row_weight=weight)
                grads = torch.autograd.grad(loss.sum(), params)  # members are independent: sum = per-member grads
            opt.step(list(grads))
            last["total"] += loss.detach()
            return bce.detach() @ onehot

        return step

    return make_step


def train_ponder(
    model: PonderEnsemble,
    phases: list[Phase],
    *,
    beta: torch.Tensor,
    penalty: str = "layers",
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    batch_size: int = 32,
    data_generators: list[torch.Generator],
    log_every: int | None = None,
    evaluate: Callable[[PonderEnsemble], dict[str, torch.Tensor]] | None = None,
    on_steps: Callable[[int], None] | None = None,
    stopping: Stopping | None = None,
) -> tuple[Trajectory, torch.Tensor]:
    """Train `model` in place. Returns the trajectory (logged as `trainer.train` logs it, with each
    head's expected output loss as its training loss; empty without `evaluate`) and each member's mean
    loss, penalty included, over the last phase (N,)."""
    last: dict = {}
    make_step = ponder_steps(model, beta=beta, penalty=penalty, optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                             batch_size=batch_size, last=last)
    traj = run_phases(
        model.parameters(), phases, make_step, n_heads=model.params["out_w"][0].shape[-1], batch_size=batch_size,
        data_generators=data_generators, log_every=log_every, evaluate=(lambda: evaluate(model)) if evaluate is not None else None,
        on_steps=on_steps, stopping=stopping,
    )
    mean_loss = last["total"].cpu() / last["steps"] if last else torch.full((model.n_members,), float("nan"))
    return traj, mean_loss
