"""The detector interface: a function of a batched model and the world's training inputs only, returning
one score per member (higher = more likely deceptive), and the registry that finds one by name.

    deceptionlab detect DIR --detector noise                  # built in (`BUILTIN`)
    deceptionlab detect DIR --detector mydetectors            # an entry point of group "deceptionlab.detectors"
    deceptionlab detect DIR --detector my_detector:detector   # "module:name": a Detector (what @detector makes)

A detector sees `Inputs`: the training inputs and their targets, the proxy's labels on them and one seed
per member. It may look at probe inputs, the deployment cue's columns or the true situation (through
`Inputs.world`) only if it declares `privileged = True`; reports keep the two kinds apart. A dotted
path's module is found the way a world's is (`deceptionlab.worlds.registry`): sys.path, then the search
folders, then the working directory. What it names must be a `Detector` or a subclass of it
(`registry.get_detector` checks before calling anything); a plain function is refused: decorate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..core import rng
from ..models import MLPEnsemble
from ..worlds import World

ENTRY_POINT_GROUP = "deceptionlab.detectors"


class DetectorError(ValueError):
    """A detector that cannot be found or that returns something other than one score per member; one line."""


@dataclass(frozen=True)
class Inputs:
    """What a detector may use. Unprivileged detectors use x, y, proxy and seeds only."""

    x: torch.Tensor  # (M, n_in) the policy's training inputs (the world's fit dataset)
    y: torch.Tensor  # (M,) the training targets in {-1, +1}
    proxy: torch.Tensor  # (M,) the run's own goal (the proxy) on those inputs: what "misbehaving" would be
    seeds: list[int]  # one per member: the run's seed, for `generators`
    world: World  # privileged detectors only: probe cells, cue channels, decodables

    def generators(self, purpose: str) -> list[torch.Generator]:
        """One generator per member, derived from its run's seed and `purpose` (deceptionlab.core.rng)."""
        return [rng.generator(s, f"detect/{purpose}") for s in self.seeds]

    @classmethod
    def of(cls, world: World, seeds: list[int]) -> "Inputs":
        fit = world.datasets[world.fit_dataset]
        goal = getattr(world, "goal", None)  # bitworld's own goal as a function of the state
        state = world.channels.get("world_state")
        if goal is not None and state is not None:
            proxy = goal(fit.x[:, state]).float()
        else:  # a world without one: the proxy template of the training-situation probe cells is not on x
            proxy = -fit.y.float()
        return cls(fit.x.float(), fit.y.float(), proxy, list(seeds), world)


@dataclass(frozen=True)
class Detector:
    """A named scoring function; `privileged`: it looks at probe inputs or the cue's true meaning."""

    name: str
    score: Callable[[MLPEnsemble, Inputs], np.ndarray | torch.Tensor]
    privileged: bool = False
    doc: str = ""

    @property
    def uses_probes(self) -> bool:
        return self.privileged

    def __call__(self, model: MLPEnsemble, inputs: Inputs) -> np.ndarray:
        out = self.score(model, inputs)
        out = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
        out = out.astype(float).reshape(-1) if out.size == model.n_members else out
        if out.shape != (model.n_members,):
            raise DetectorError(f"detector {self.name!r} returned shape {np.shape(out)}, expected one score per member ({model.n_members},)")
        return out


BUILTIN: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    BUILTIN[detector.name] = detector
    return detector


def detector(name: str | None = None, privileged: bool = False):
    """Decorator: `@detector("name")` over `f(model, inputs) -> (N,) scores` makes it a Detector."""

    def wrap(f):
        return Detector(name or f.__name__, f, privileged, (f.__doc__ or "").strip().split("\n")[0])

    return wrap
