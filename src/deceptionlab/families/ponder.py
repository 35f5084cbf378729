"""The "ponder" family: early-exit MLPs trained under a compute penalty (the speed prior as an
intervention), chosen by a config's `model.compute_penalty` = beta for worlds of the "mlp" family.

A member is `models.PonderEnsemble` of `model.depth` layers of `model.width`, with an output head for
every world head and a halting head after every layer; it is trained through the config's phases
with beta * E[exit layer] added to its loss (`train.ponder`). Its decision is the mixture of its
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
from ..train.ponder import train_ponder
from . import ChunkResult, register, stopping_rule
from .mlp import build_phases


class PonderEvaluator(ProbeEvaluator):
    """`ProbeEvaluator` for early-exit ensembles: the policy's logit is the mixture over exits."""

    def policy_logits(self, model: PonderEnsemble, hidden: torch.Tensor | None = None) -> torch.Tensor:
        return model.logits(self.x)[..., self.policy_head]


class PonderFamily:
    name = "ponder"

    def n_outputs(self, world) -> int:
        return len(world.heads)

    def evaluator(self, world, device: str = "cpu") -> PonderEvaluator:
        return PonderEvaluator(world, device)

    def train_chunk(self, world, config, runs, device="cpu", on_fraction=None) -> ChunkResult:
        phases = build_phases(world, config.normalised())
        total_steps = sum(p.steps for p in phases)
        model = PonderEnsemble.init(
            world.input_dim, config.model.depth, config.model.width, self.n_outputs(world), [generator(r.seed, "init") for r in runs]
        ).to(device)
        evaluator = self.evaluator(world, device)
        opt = config.optimizer
        traj, _ = train_ponder(
            model,
            phases,
            beta=torch.full((len(runs),), float(config.model.compute_penalty), device=device),
            penalty=config.model.ponder_penalty,
            optimizer=opt.name,
            lr=opt.lr,
            momentum=opt.momentum,
            weight_decay=opt.weight_decay,
            batch_size=opt.batch_size,
            data_generators=[generator(r.data_seed, "data") for r in runs],
            log_every=config.log_every,
            evaluate=evaluator,
            on_steps=(lambda k: on_fraction(k / total_steps)) if on_fraction is not None and total_steps else None,
            stopping=stopping_rule(config),
        )
        with torch.no_grad():
            exits = model.expected_exit(evaluator.x).mean(1)  # (N,)
            per_cell = torch.stack([model.expected_exit(c.x.to(device)).mean(1) for c in world.probe_cells], 1)  # (N, cells)
        names = [c.name for c in world.probe_cells]
        cells = [[{"cell": n, "expected_exit": e} for n, e in zip(names, row)] for row in per_cell.tolist()]
        return ChunkResult(traj, evaluator, None, {"expected_exit": exits.tolist(), "exit_cells": cells})


register(PonderFamily())
