"""The "ponder" family: early-exit MLPs trained under a compute penalty (the speed prior as an
intervention), chosen by a config's `model.compute_penalty` = beta for worlds of the "mlp" family.

A member is `models.PonderEnsemble` of `model.depth` layers of `model.width`, with an output head for
every world head and a halting head after every layer; it is trained through the config's phases
with beta * E[exit layer] added to its loss (`train.ponder.ponder_steps`, in the one loop). Its decision is the mixture of its
exits' decisions, scored by the same probe cells, verdicts and trajectory keys as an MLP; the linear
probes read its last trunk layer. Rows get one more column, `expected_exit`: the mean expected exit
layer (from 1) over every probe and training input at the end. Final weights are not stored (loss
barriers are measured between MLPs only). And `exit_cells`: per probe cell, {cell, expected_exit}, the
mean expected exit layer over the cell's inputs (measure.speed.ponder_cells reads it).
"""

from __future__ import annotations

import torch

from ..core.rng import generator
from ..judge.cells import ProbeEvaluator
from ..models import PonderEnsemble
from ..train.ponder import ponder_steps
from .base import ChunkResult, Family
from .registry import register


class PonderEvaluator(ProbeEvaluator):
    """`ProbeEvaluator` for early-exit ensembles: the policy's logit is the mixture over exits."""

    def policy_logits(self, model: PonderEnsemble, hidden: torch.Tensor | None = None) -> torch.Tensor:
        return model.logits(self.x)[..., self.policy_head]


class PonderFamily(Family):
    name = "ponder"
    title = "early-exit models"
    capabilities = frozenset({"early_stopping"})  # no early interventions; no stored weights (barriers are between MLPs)

    def n_outputs(self, world) -> int:
        return len(world.heads)

    def evaluator(self, world, device: str = "cpu") -> PonderEvaluator:
        return PonderEvaluator(world, device)

    def init(self, world, config, runs, device="cpu") -> PonderEnsemble:
        gens = [generator(r.seed, "init") for r in runs]
        return PonderEnsemble.init(world.input_dim, config.model.depth, config.model.width, self.n_outputs(world), gens).to(device)

    def parameters(self, model: PonderEnsemble) -> list[torch.Tensor]:
        return model.parameters()

    def make_step(self, world, config, model, runs, phases, device):
        opt = config.optimizer
        beta = torch.full((len(runs),), float(config.model.compute_penalty), device=device)
        return ponder_steps(model, beta=beta, penalty=config.model.ponder_penalty, optimizer=opt.name, lr=opt.lr, momentum=opt.momentum,
                            weight_decay=opt.weight_decay, batch_size=opt.batch_size)

    def finish(self, world, config, runs, model, evaluator, traj) -> ChunkResult:
        with torch.no_grad():
            exits = model.expected_exit(evaluator.x).mean(1)  # (N,)
            per_cell = torch.stack([model.expected_exit(c.x.to(evaluator.x.device)).mean(1) for c in world.probe_cells], 1)  # (N, cells)
        names = [c.name for c in world.probe_cells]
        cells = [[{"cell": n, "expected_exit": e} for n, e in zip(names, row)] for row in per_cell.tolist()]
        return ChunkResult(traj, evaluator, None, {"expected_exit": exits.tolist(), "exit_cells": cells})


register(PonderFamily())
