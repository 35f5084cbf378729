"""Model families: how one kind of model is built, trained and scored on a world.

A world names its family (`World.family`, "mlp" unless it says otherwise); the executor and the
measurements reach models only through it. A family provides
- `train_chunk(world, config, runs, device, on_fraction)`: train one batched ensemble (a chunk of
  runs of one condition, model axis first) through the config's phases and return a `ChunkResult`:
  the trajectory (logged at every checkpoint: "agreement" (N, cells, classes), "train_accuracy" (N,),
  "decisions" (N, bytes), "train_loss" (N, heads) and, if measured, "decodability"), the evaluator
  that scored it and, when the config asks, the final weights flattened to (N, P);
- `evaluator(world, device)`: the object that scores models of the family on the world's probe
  cells; it has `cell_names`, `discriminating`, `deployment`, `n_probe` and `decodable_names`;
- `n_outputs(world)`: the readout columns a model of the family needs (one per head for "mlp").

Families other than "mlp" register themselves with `register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from ..train import Trajectory


@dataclass
class ChunkResult:
    trajectory: Trajectory
    evaluator: Any
    weights: torch.Tensor | None = None  # (N, P) float32 when the config saves weights


class Family(Protocol):
    name: str

    def train_chunk(self, world, config, runs, device: str = "cpu", on_fraction: Callable[[float], None] | None = None) -> ChunkResult: ...

    def evaluator(self, world, device: str = "cpu"): ...

    def n_outputs(self, world) -> int: ...


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The family registered under `name`; a ValueError listing the known families otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


from . import mlp  # noqa: E402,F401  (registers the default family)

__all__ = ["ChunkResult", "Family", "FAMILIES", "get_family", "register"]
