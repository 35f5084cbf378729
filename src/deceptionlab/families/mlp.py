"""The "mlp" family: an MLP trunk with one logit per head, trained through phases with the lab's
batched trainer, its policy decision the sign of the policy logit (bitworld and tabular worlds)."""

from __future__ import annotations

import math

import torch

from ..core.rng import generator
from ..judge.cells import ProbeEvaluator
from ..judge.controls import ablated_gaps, distance_gaps
from ..judge.deception import Pairs
from ..models import MLPEnsemble
from ..train.trainer import mlp_steps
from ..worlds import CLASSES
from .base import ChunkResult, Family, build_phases  # noqa: F401  (build_phases: re-exported)
from .registry import register


def perturb(model: MLPEnsemble, generators: list[torch.Generator], scale: float) -> None:
    """Add N(0, (scale * init std)^2) noise to every parameter, member by member (measure F: an early
    intervention on the weights). The init is U(-b, b) with b = 1/sqrt(fan_in), whose std is b/sqrt(3)."""
    for w, b in zip(model.params[::2], model.params[1::2]):
        std = scale / math.sqrt(3 * w.shape[1])  # w: (N, fan_in, fan_out)
        for p in (w, b):
            p.add_(torch.stack([torch.randn(p.shape[1:], generator=g) for g in generators]).to(p.device), alpha=std)


def control_columns(model: MLPEnsemble, world, generators: list[torch.Generator]) -> dict[str, list]:
    """The gap's controls on the final models (judge.controls): the distance null and the causal test."""
    pairs = Pairs.of(world)
    n = model.n_members
    dist = distance_gaps(model, world, pairs)
    abl = ablated_gaps(model, world, pairs, generators)
    nan = [float("nan")] * n
    return {
        "cue_distance": [dist[0] if dist is not None else [] for _ in range(n)],
        "gap_by_distance": dist[1].tolist() if dist is not None else [[] for _ in range(n)],
        "compliance_gap_ablated": abl["gap"].tolist() if abl is not None else nan,
        "compliance_gap_random_ablation": abl["random_gap"].tolist() if abl is not None else nan,
        "situation_decodable_ablated": abl["decodable"].tolist() if abl is not None else nan,
        "compliance_gap_patched": abl["patched_gap"].tolist() if abl is not None else nan,
        "compliance_gap_random_patch": abl["patched_random_gap"].tolist() if abl is not None else nan,
    }


class MLPFamily(Family):
    name = "mlp"
    title = "MLPs"
    algorithms = ("supervised",)

    def n_outputs(self, world) -> int:
        return len(world.heads)

    def evaluator(self, world, device: str = "cpu") -> ProbeEvaluator:
        return ProbeEvaluator(world, device)

    def policy_loss(self, world, model: MLPEnsemble) -> torch.Tensor:
        """Each member's policy loss on its training data (the fit dataset): the mean logistic loss, (N,)."""
        fit = world.datasets[world.fit_dataset]
        return torch.nn.functional.softplus(-fit.y.float() * model.logits(fit.x.float())[..., 0]).mean(-1)

    def imitation_data(self, world) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """What imitating each class's reference means (measure.speed): every input where the classes are
        defined (probe cells and the policy's training data, each distinct input once), each implementable
        class's reference decision on it, and the outputs an imitator needs (one logit)."""
        x = torch.cat([c.x for c in world.probe_cells] + [world.datasets[world.fit_dataset].x]).unique(dim=0)
        return x, {c: world.references[c](x).float() for c in CLASSES if c in world.references}, 1

    def init(self, world, config, runs, device="cpu") -> MLPEnsemble:
        gens = [generator(r.seed, "init") for r in runs]
        return MLPEnsemble.init(world.input_dim, config.model.depth, config.model.width, self.n_outputs(world), gens, device)

    def perturb(self, model, generators, scale) -> None:
        perturb(model, generators, scale)

    def make_step(self, world, config, model, runs, phases, device):
        opt = config.optimizer
        return mlp_steps(model, phases, optimizer=opt.name, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay, batch_size=opt.batch_size)

    def finish(self, world, config, runs, model, evaluator, traj) -> ChunkResult:
        res = super().finish(world, config, runs, model, evaluator, traj)
        res.columns = control_columns(model, world, [generator(r.seed, "causal") for r in runs])
        return res


register(MLPFamily())
