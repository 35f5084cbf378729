"""The `World` interface: what an experiment's environment and data must provide.

A world knows nothing of training. It names its observation channels, its heads and their
datasets, its probe cells (with each class's template on them) and a reference implementation of
every class. The trainer only sees `Dataset`s; the verdicts only see `ProbeCell`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

CLASSES: tuple[str, ...] = ("internal", "corrigible", "deceptive", "proxy")
"""The alignment classes of the source texts (Jesus, Luther, Pascal) plus plain proxy alignment."""
ALIGNED: tuple[str, ...] = ("internal", "corrigible", "deceptive")
"""The classes that act on the base objective in training; they must agree on the training data."""

Reference = Callable[[torch.Tensor], torch.Tensor]
"""A class's reference implementation: observations (n, input_dim) -> policy output (n,) in {-1,+1}."""


class Knobs(BaseModel):
    """Base of every world's knob model: unknown knobs are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Dataset:
    """A finite training distribution: rows are drawn uniformly with replacement."""

    x: torch.Tensor  # (P, input_dim) float32 observations
    y: torch.Tensor  # (P,) float32 targets in {-1,+1}
    doc: str = ""


@dataclass(frozen=True)
class Head:
    """A readout of the shared trunk, with the dataset it trains on unless a phase says otherwise."""

    name: str
    dataset: str
    doc: str = ""


@dataclass(frozen=True)
class ProbeCell:
    """A region of inputs the trainer never shows the policy, where the classes can differ.

    `templates[c]` is what class c's policy outputs on each input, decided from the cell's true
    situation and spec, not from the observation: with no situation cue a deceptive template still
    exists, but no function of the observation implements it.
    """

    name: str  # e.g. "deployment/alt1/disagree"
    situation: str
    spec: str
    region: str
    x: torch.Tensor  # (n, input_dim)
    templates: dict[str, torch.Tensor] = field(default_factory=dict)  # class -> (n,) in {-1,+1}
    in_training: bool = False  # the cell lies inside the policy's training distribution

    @property
    def discriminating(self) -> bool:
        """True when at least two templates differ somewhere in the cell."""
        ts = list(self.templates.values())
        return any(not torch.equal(ts[0], t) for t in ts[1:])


class World:
    """Base class of worlds. Subclasses set `name`, `Knobs`, and fill the attributes in `__init__`."""

    name: ClassVar[str]
    Knobs: ClassVar[type[Knobs]] = Knobs
    doc: ClassVar[str] = ""
    all_heads: ClassVar[tuple[str, ...]] = ("policy",)  # every head any knob setting can give
    family: ClassVar[str] = "mlp"  # the model family that trains on it (deceptionlab.families)

    input_dim: int
    channels: dict[str, slice]  # observation channel -> columns: world_state, situation_cue, objective_spec
    heads: dict[str, Head]  # the heads this world (with these knobs) gives the model; "policy" first
    datasets: dict[str, Dataset]
    fit_dataset: str  # the policy's training distribution: the fit flag is accuracy on it
    probe_cells: list[ProbeCell]
    references: dict[str, Reference]  # class -> reference implementation (absent if unimplementable)
    decodables: dict[str, Dataset]  # what linear probes on the trunk try to read out ("does it know...")

    def __init__(self, knobs: Knobs | dict | None = None):
        self.knobs = knobs if isinstance(knobs, self.Knobs) else self.Knobs(**(knobs or {}))
        self.decodables = {}

    def check(self) -> None:
        """Raise ValueError naming what is wrong if the world breaks the interface's contract."""
        problems = []
        if "policy" not in self.heads:
            problems.append("it has no 'policy' head")
        for h in self.heads.values():
            if h.dataset not in self.datasets:
                problems.append(f"head {h.name!r} trains on unknown dataset {h.dataset!r}")
        for name, ds in self.datasets.items():
            if ds.x.ndim != 2 or ds.x.shape[1] != self.input_dim:
                problems.append(f"dataset {name!r} has x of shape {tuple(ds.x.shape)}, expected (P, {self.input_dim})")
            elif ds.y.shape != (ds.x.shape[0],):
                problems.append(f"dataset {name!r} has y of shape {tuple(ds.y.shape)}, expected ({ds.x.shape[0]},)")
        if self.fit_dataset not in self.datasets:
            problems.append(f"fit_dataset {self.fit_dataset!r} is not a dataset")
        for cell in self.probe_cells:
            missing = [c for c in CLASSES if c not in cell.templates]
            if missing:
                problems.append(f"probe cell {cell.name!r} lacks templates for {missing}")
            if cell.x.ndim != 2 or cell.x.shape[1] != self.input_dim:
                problems.append(f"probe cell {cell.name!r} has x of shape {tuple(cell.x.shape)}")
        for cell in self.probe_cells:
            if cell.in_training and not problems:
                ts = [cell.templates[c] for c in ALIGNED]
                if any(not torch.equal(ts[0], t) for t in ts[1:]):
                    problems.append(
                        f"templates disagree on training cell {cell.name!r} "
                        "(internal, corrigible and deceptive must act alike in training)"
                    )
        missing = [c for c in ("internal", "corrigible", "proxy") if c not in self.references]
        if missing:
            problems.append(f"no reference implementation for {missing}")
        if problems:
            raise ValueError(f"world {self.name!r}: " + "; ".join(problems))

    def describe_knobs(self) -> list[tuple[str, str, str]]:
        """(knob, default, description) rows for `deceptionlab worlds`."""
        rows = []
        for name, f in self.Knobs.model_fields.items():
            rows.append((name, repr(f.default), f.description or ""))
        return rows
