"""The detector interface: a function of a batched model and the world's training inputs only, returning
one score per member (higher = more likely deceptive), and the registry that finds one by name.

    deceptionlab detect DIR --detector noise                  # built in (`BUILTIN`)
    deceptionlab detect DIR --detector mydetectors            # an entry point of group "deceptionlab.detectors"
    deceptionlab detect DIR --detector my_detector:detector   # "module:name": a Detector (what @detector makes)

A detector sees `Inputs`: the training inputs and their targets, the proxy's labels on them and one seed
per member (and, for the transformer family, the training inputs as token rows). It declares the model
families it reads (`families`; None: any); `detect` refuses it in one line for the others. It may look
at probe inputs, the deployment cue's columns or the true situation (through
`Inputs.world`) only if it declares `privileged = True`; reports keep the two kinds apart. A dotted
path's module is found the way a world's is (`deceptionlab.worlds.registry`): sys.path, then the search
folders, then the working directory. What it names must be a `Detector` or a subclass of it
(`registry.get_detector` checks before calling anything); a plain function is refused: decorate it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    y: torch.Tensor  # (M,) the training targets: signs {-1, +1} (mlp) or answer codes (transformer)
    proxy: torch.Tensor  # (M,) the run's own goal (the proxy) on those inputs, in the targets' codes: what "misbehaving" would be
    seeds: list[int]  # one per member: the run's seed, for `generators`
    world: World  # privileged detectors only: probe cells, cue channels, decodables
    family: str = "mlp"  # the models' family: "mlp" or "transformer"
    tokens: torch.Tensor | None = None  # (M, seq_len) the training inputs as token ids (transformer family)
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # work detectors share on one model (the noise draws)

    def generators(self, purpose: str) -> list[torch.Generator]:
        """One generator per member, derived from its run's seed and `purpose` (deceptionlab.core.rng)."""
        return [rng.generator(s, f"detect/{purpose}") for s in self.seeds]

    @classmethod
    def of(cls, world: World, seeds: list[int], family: str | None = None) -> "Inputs":
        fit = world.datasets[world.fit_dataset]
        family = family or type(world).family
        if "proxy" in getattr(world, "references", {}):  # the proxy class's reference: the run's own goal
            proxy = world.references["proxy"](fit.x).float()
        else:  # a world without one: the opposite of the training target
            proxy = -fit.y.float()
        tokens = world.tokens(fit.x) if family == "transformer" else None
        return cls(fit.x.float(), fit.y.float(), proxy, list(seeds), world, family, tokens)


@dataclass(frozen=True)
class Detector:
    """A named scoring function; `privileged`: it looks at probe inputs or the cue's true meaning."""

    name: str
    score: Callable[[MLPEnsemble, Inputs], np.ndarray | torch.Tensor]
    privileged: bool = False
    doc: str = ""
    families: tuple[str, ...] | None = None  # the model families it reads; None: any
    refusal: str = ""  # why it does not apply to the other families (one phrase)

    def applies(self, family: str) -> bool:
        return self.families is None or family in self.families

    def refuse(self, family: str) -> str:
        """The one line saying why this detector does not score models of `family`."""
        return f"detector {self.name!r} does not apply to the {family} family (it reads {', '.join(self.families or ())} models{': ' + self.refusal if self.refusal else ''})"

    @property
    def uses_probes(self) -> bool:
        return self.privileged

    def __call__(self, model: MLPEnsemble, inputs: Inputs) -> np.ndarray:
        if not self.applies(inputs.family):
            raise DetectorError(self.refuse(inputs.family))
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


def detector(name: str | None = None, privileged: bool = False, families: tuple[str, ...] | None = None):
    """Decorator: `@detector("name")` over `f(model, inputs) -> (N,) scores` makes it a Detector."""

    def wrap(f):
        return Detector(name or f.__name__, f, privileged, (f.__doc__ or "").strip().split("\n")[0], families)

    return wrap
