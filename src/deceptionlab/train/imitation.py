"""Imitation: train an MLP ensemble, member m on its own targets, full batch (speed's compute per class).

The inputs are few (every input where the classes are defined), so every step sees them all; there is
no minibatch noise and no phase, only `steps` Adam steps on the logistic loss (one output) or the
cross-entropy (several outputs, e.g. actions). `sweep.measurements` runs it for the "imitation" spec kind.
"""

from __future__ import annotations

import itertools

import torch

from ..models import MLPEnsemble
from . import optim
from .loop import HeadData, Phase, run_phases


def forward_flops(n_in: int, depth: int, width: int, n_out: int = 1) -> int:
    """Multiply-adds of one forward pass of an MLP, counted as 2 * fan_in * fan_out per layer
    (biases and ReLUs are lower order and left out)."""
    sizes = [n_in] + [width] * depth + [n_out]
    return sum(2 * a * b for a, b in itertools.pairwise(sizes))


def imitate(x: torch.Tensor, y: torch.Tensor, depth: int, width: int, gens: list[torch.Generator], steps: int, lr: float, n_outputs: int = 1,
            on_steps=None) -> MLPEnsemble:
    """Train one ensemble, member m on targets y[m] (N, P), full batch, through the one training loop: the
    logistic loss on +-1 targets (one output), or the cross-entropy on class indices (n_outputs > 1, e.g.
    actions)."""
    model = MLPEnsemble.init(x.shape[1], depth, width, n_outputs, gens)
    opt = optim.Adam(model.params, lr)
    k = int((x != 0).sum(1).max())
    if 8 * k <= x.shape[1]:  # mostly zeros (one-hot planes): the first layer as a sum of weight rows
        idx = x.abs().topk(k, 1).indices
        idx, val = idx.expand(len(gens), -1, -1), x.gather(1, idx).expand(len(gens), -1, -1)
        forward, backward = (lambda: model.forward_sparse(idx, val)), model.backward_sparse
    else:
        xb = x.expand(len(gens), -1, -1).contiguous()
        forward, backward = (lambda: model.forward(xb)), model.backward
    onehot = torch.nn.functional.one_hot(y.long(), n_outputs).float() if n_outputs > 1 else None
    no_loss = torch.zeros(len(gens), 1)

    def step(_rows) -> torch.Tensor:  # full batch: every step sees every input
        z, cache = forward()
        if onehot is None:
            dz = (torch.sigmoid(-y * z[..., 0]) * -y / x.shape[0]).unsqueeze(-1)  # d mean softplus(-yz) / dz
        else:
            dz = (z.softmax(-1) - onehot) / x.shape[0]  # d mean cross-entropy / dz
        opt.step(backward(cache, dz))
        return no_loss  # nothing is logged

    # once the fit is perfect, Adam's moments go denormal: the loop flushes them (~40x faster)
    run_phases(model.params, [Phase("imitation", steps, [HeadData(0, x, y[0], 1.0)])], lambda phase, xs, ys: step, n_heads=1, batch_size=None,
               data_generators=[], log_every=None, evaluate=None, on_steps=on_steps)
    return model
