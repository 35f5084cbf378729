"""The `Family` base class: what a model family supplies to the one training loop, which spec fields it
honours, and what it needs of a world.

A family supplies its model (`init`, `perturb`), its step (`make_step`: one optimisation step of every
member, for `train.loop.run_phases`), its evaluator and what it adds to a run's row (`finish`); the
base class's `train_chunk` runs them through the one loop, so checkpoints, early stopping, early
interventions and trajectory logging mean the same in every family.

Two contracts are declared on the class and checked when a spec is validated (`sweep.spec`), before
anything trains:
- `capabilities`: the spec fields the family honours (`CAPABILITIES`); a config that sets one the
  family lacks is refused with one line naming the field (`check_config`);
- `world_protocol`: what a world must offer the family beyond the `World` contract (docs/worlds.md,
  "What each family needs"); `check_world` names what is missing or of the wrong kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..core.rng import generator
from ..train import Stopping, Trajectory
from ..train.loop import HeadData, MakeStep, Phase, run_phases


@dataclass(frozen=True)
class Capability:
    """A spec field a family may or may not honour: `used(config)` says whether a config asks for it."""

    field: str
    used: Callable[[Any], bool]


CAPABILITIES: dict[str, Capability] = {
    "early_stopping": Capability("early_stopping.enabled", lambda c: c.early_stopping.enabled),
    "data_swap": Capability("early.data_swap_steps", lambda c: c.early.data_swap_steps > 0),
    "weight_noise": Capability("early.weight_noise", lambda c: c.early.weight_noise > 0),
    "save_weights": Capability("save_weights", lambda c: c.save_weights),
}
"""Capability tag -> the spec field it stands for."""


@dataclass(frozen=True)
class Need:
    """One item of a family's world protocol: an attribute of the world, its kind ("method", "int",
    "dict") and what the family does with it."""

    attribute: str
    kind: str
    doc: str

    def problem(self, world) -> str | None:
        if not hasattr(world, self.attribute):  # the protocol's own check: the one place that probes
            return f"it has no {self.attribute} ({self.doc})"
        value = getattr(world, self.attribute)
        ok = {"method": callable, "int": lambda v: isinstance(v, int) and not isinstance(v, bool), "dict": lambda v: isinstance(v, dict)}[self.kind]
        if not ok(value):
            return f"{self.attribute} must be {'a method' if self.kind == 'method' else 'an int' if self.kind == 'int' else 'a dict'}, got {type(value).__name__}"
        return None


@dataclass
class ChunkResult:
    trajectory: Trajectory
    evaluator: Any
    weights: torch.Tensor | None = None  # (N, P) float32 when the config saves weights
    columns: dict[str, list] = field(default_factory=dict)  # further result columns, one value per run


def stopping_rule(config) -> Stopping | None:
    """The config's early stopping as the trainer's rule: fit means the verdicts' fit threshold."""
    from ..core.scoring import TOLERANCE

    es = config.early_stopping
    return Stopping(config.verdict.fit_threshold - TOLERANCE, es.patience) if es.enabled else None


def build_phases(world, normalised: dict) -> list[Phase]:
    """A normalised config's phases as the loop's: each head's index, dataset, loss weight and name."""
    heads = list(world.heads)
    return [
        Phase(
            ph["name"],
            ph["steps"],
            [HeadData(heads.index(h), world.datasets[e["data"]].x, world.datasets[e["data"]].y, e["weight"], e["data"]) for h, e in ph["heads"].items()],
            ph.get("algorithm", "supervised"),
        )
        for ph in normalised["phases"]
    ]


class Family:
    """Base class of model families (mlp, ponder, transformer, gridworld). Subclasses set `name`,
    `title`, `algorithms`, `capabilities` and `world_protocol`, and implement `init`, `make_step`,
    `evaluator`, `n_outputs`, `policy_loss` and `imitation_data`."""

    name: ClassVar[str]
    title: ClassVar[str] = "this model family"  # how messages name its models, e.g. "early-exit models"
    algorithms: ClassVar[tuple[str, ...]] = ("supervised",)  # PhaseSpec.algorithm values it trains by
    capabilities: ClassVar[frozenset[str]] = frozenset(CAPABILITIES)
    world_protocol: ClassVar[tuple[Need, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")  # device kinds it trains on

    # -- the contracts ------------------------------------------------------------------------------------
    def check_config(self, config, world) -> list[str]:
        """One line per spec field of `config` (a config for `world`) the family cannot honour (empty when
        it honours all)."""
        problems = []
        for tag, cap in CAPABILITIES.items():
            if tag not in self.capabilities and cap.used(config):
                problems.append(f"{cap.field}: not implemented for {self.title} (model family {self.name!r})")
        for i, ph in enumerate(config.phases):
            if ph.algorithm not in self.algorithms:
                problems.append(f"phases.{i}.algorithm: {world.name}'s model family {self.name!r} trains by {', '.join(self.algorithms)} only")
        return problems

    def check_world(self, world) -> list[str]:
        """What `world` lacks of the family's world protocol, one phrase each (empty when it offers all)."""
        return [p for need in self.world_protocol if (p := need.problem(world)) is not None]

    def check_device(self, device: str) -> None:
        if torch.device(device).type not in self.devices:
            raise ValueError(f"the {self.name} family trains on {', '.join(self.devices)} only (got --device {device})")

    # -- what a family supplies -------------------------------------------------------------------------
    def phases(self, world, config) -> list[Phase]:
        """The config's curriculum as the loop's phases (its normalised phases: empty ones dropped)."""
        return build_phases(world, config.normalised())

    def init(self, world, config, runs, device: str = "cpu"):
        """A fresh ensemble of len(runs) members, member m from `generator(runs[m].seed, "init")`."""
        raise NotImplementedError

    def perturb(self, model, generators: list[torch.Generator], scale: float) -> None:
        """The early intervention `early.weight_noise`: noise of `scale` init standard deviations."""
        raise NotImplementedError

    def parameters(self, model) -> list[torch.Tensor]:
        """The ensemble's weights, model axis first, as the loop's early stopping freezes them."""
        return model.params

    def make_step(self, world, config, model, runs, phases: list[Phase], device: str) -> MakeStep:
        """The family's step for `train.loop.run_phases` (its optimiser made here, once per chunk)."""
        raise NotImplementedError

    def evaluator(self, world, device: str = "cpu"):
        raise NotImplementedError

    def finish(self, world, config, runs, model, evaluator, traj: Trajectory) -> ChunkResult:
        """The chunk's result once trained: by default its weights when the config saves them."""
        weights = torch.cat([p.reshape(len(runs), -1) for p in self.parameters(model)], 1).float().cpu() if config.save_weights else None
        return ChunkResult(traj, evaluator, weights)

    # -- the one training loop ----------------------------------------------------------------------------
    def train_chunk(self, world, config, runs, device: str = "cpu", on_fraction: Callable[[float], None] | None = None) -> ChunkResult:
        """Train one batched ensemble (a chunk of runs of one condition, model axis first) through the
        config's phases with `train.loop.run_phases`, and return its `ChunkResult`."""
        self.check_device(device)
        phases = self.phases(world, config)
        total = sum(p.steps for p in phases)
        model = self.init(world, config, runs, device)
        if config.early.weight_noise > 0:
            self.perturb(model, [generator(r.seed, "perturb") for r in runs], config.early.weight_noise)
        evaluator = self.evaluator(world, device)
        make_step = self.make_step(world, config, model, runs, phases, device)
        swap = config.early.data_swap_steps
        traj = run_phases(
            self.parameters(model), phases, make_step, n_heads=len(world.heads), batch_size=config.optimizer.batch_size,
            data_generators=[generator(r.data_seed, "data") for r in runs], log_every=config.log_every,
            evaluate=lambda: evaluator(model), on_steps=(lambda k: on_fraction(k / total)) if on_fraction is not None and total else None,
            early=(swap, [generator(r.data_seed, "early-data") for r in runs]) if swap > 0 else None, stopping=stopping_rule(config),
        )
        return self.finish(world, config, runs, model, evaluator, traj)

    # -- what the measurements ask of a family ----------------------------------------------------------
    def n_outputs(self, world) -> int:
        """The readout columns a model of the family needs (one per head for "mlp")."""
        return len(world.heads)

    def n_params(self, world, depth: int, width: int) -> int:
        """Parameters of one model, weighted by what a forward pass costs per parameter (the planner's
        estimates, `sweep.experiment`): an MLP's, by default."""
        return world.input_dim * width + (depth - 1) * width * width + width * len(world.heads) + (depth + 1) * width

    def policy_loss(self, world, model) -> torch.Tensor:
        raise NotImplementedError

    def imitation_data(self, world) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        raise NotImplementedError
