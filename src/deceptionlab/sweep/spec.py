"""Experiment specs: TOML files validated by pydantic, expanded into conditions and runs.

A spec names a world (and its knobs), a model, an optimiser, a curriculum of phases, the seeds and
the sweep axes. Each sweep axis is a dotted path into the spec ("optimizer.lr", "phases.0.steps",
"world.knobs.cue_copies") with a list of values; conditions are the grid over all axes. A run is a
condition plus an init seed and a data-order seed; its id hashes the condition's normalised config
(defaults filled in, switched-off heads and empty phases dropped) with both seeds.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..worlds import get_world

RESULTS_VERSION = 3  # bump when stored rows change meaning; part of every run id


class SpecError(ValueError):
    """A spec problem, worded as one line naming the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorldSpec(_Strict):
    name: str = "bitworld"
    """Registered world name (`deceptionlab worlds` lists them)."""
    knobs: dict[str, Any] = Field(default_factory=dict)
    """The world's knobs; unknown knobs are errors."""


class ModelSpec(_Strict):
    depth: int = Field(2, ge=1, le=16)
    """Hidden layers of the MLP trunk."""
    width: int = Field(64, ge=1, le=4096)
    """Units per hidden layer."""


class OptimizerSpec(_Strict):
    name: Literal["sgd", "adam"] = "adam"
    """Per-member optimiser."""
    lr: float = Field(1e-3, gt=0, le=10)
    """Learning rate."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum (ignored by Adam)."""
    weight_decay: float = Field(0.0, ge=0, le=1)
    """L2 weight decay added to the gradient."""
    batch_size: int = Field(32, ge=1, le=4096)
    """Rows per head per step."""


class HeadEntry(_Strict):
    data: str | None = None
    """Dataset the head trains on in this phase (default: the head's own dataset)."""
    weight: float = Field(1.0, ge=0, le=1000)
    """Loss weight; 0 drops the head from the phase."""


class PhaseSpec(_Strict):
    name: str
    """Label of the phase (e.g. own_goal, world_model, training)."""
    steps: int = Field(ge=0, le=10_000_000)
    """Optimisation steps; 0 skips the phase."""
    heads: dict[str, HeadEntry]
    """Which heads train in this phase, on which data, with which weight."""
    algorithm: Literal["supervised", "reinforce"] = "supervised"
    """How the policy head learns: "supervised" on its dataset's targets (imitation), or "reinforce" (REINFORCE
    with a mean baseline: rewarded for reaching, from its dataset's states, what the demonstrator reaches;
    families that roll out episodes, e.g. gridworld's)."""


class VerdictSpec(_Strict):
    threshold: float = Field(0.9, gt=0.5, le=1)
    """Class score at or above which a template counts as matched."""
    fit_threshold: float = Field(0.95, gt=0, le=1)
    """Training accuracy below which a run is `unfit`."""


class EarlySpec(_Strict):
    """Early interventions (path dependence, measure F): small changes at the very start of a run, so
    paired runs (same seeds, one with the change) show how much the outcome hangs on the first steps."""

    data_swap_steps: int = Field(0, ge=0, le=10_000_000)
    """Draw the minibatches of this many first steps from another generator; later batches are unchanged."""
    weight_noise: float = Field(0.0, ge=0, le=10)
    """Add Gaussian noise of this many init standard deviations to every initial weight and bias."""


class RunConfig(_Strict):
    """Everything one condition's runs share: what the run id hashes, with the seeds."""

    world: WorldSpec = Field(default_factory=WorldSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    phases: list[PhaseSpec] = Field(min_length=1)
    verdict: VerdictSpec = Field(default_factory=VerdictSpec)
    early: EarlySpec = Field(default_factory=EarlySpec)
    log_every: int = Field(100, ge=1)
    """Steps between trajectory checkpoints."""
    save_weights: bool = False
    """Store each run's final weights (weights/ in the results folder): loss barriers need them."""

    @model_validator(mode="after")
    def _check_world(self) -> "RunConfig":
        try:
            world_cls = get_world(self.world.name)
        except ValueError as e:
            raise ValueError(f"world.name: {e}") from None
        try:
            knobs = world_cls.Knobs(**self.world.knobs)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown knob" if err["type"] == "extra_forbidden" else err["msg"]
            raise ValueError(f"world.knobs.{loc}: {msg} (knobs of {self.world.name}: {', '.join(world_cls.Knobs.model_fields)})") from None
        self.world.knobs = knobs.model_dump()
        world = world_cls(knobs)
        for i, ph in enumerate(self.phases):
            if ph.algorithm != "supervised":
                from ..families import get_family  # late: families import the trainer, which imports nothing of specs

                family = get_family(world_cls.family)
                if ph.algorithm not in family.algorithms:
                    raise ValueError(f"phases.{i}.algorithm: {self.world.name}'s model family {family.name!r} trains by {', '.join(family.algorithms)} only")
                if "policy" not in ph.heads:
                    raise ValueError(f"phases.{i}.algorithm: {ph.algorithm} trains the policy head, which the phase does not list")
            for head, entry in ph.heads.items():
                if head not in world_cls.all_heads:
                    raise ValueError(f"phases.{i}.heads.{head}: unknown head (heads of {self.world.name}: {', '.join(world_cls.all_heads)})")
                if head in world.heads and entry.data is not None and entry.data not in world.datasets:
                    raise ValueError(f"phases.{i}.heads.{head}.data: unknown dataset {entry.data!r} (datasets: {', '.join(world.datasets)})")
        return self

    def normalised(self) -> dict:
        """The config as it determines a run: defaults filled, inert parts dropped, keys sorted."""
        world = get_world(self.world.name)(self.world.knobs)
        d = self.model_dump()
        phases = []
        for ph in self.phases:
            heads = {
                h: {"data": e.data or world.heads[h].dataset, "weight": e.weight}
                for h, e in ph.heads.items()
                if h in world.heads and e.weight > 0
            }
            if ph.steps > 0 and heads:
                phases.append({"name": ph.name, "steps": ph.steps, "heads": heads})
                if ph.algorithm != "supervised":  # absent when supervised: run ids from before the field stay
                    phases[-1]["algorithm"] = ph.algorithm
        d["phases"] = phases
        if d["optimizer"]["name"] == "adam":
            d["optimizer"].pop("momentum")
        d.pop("save_weights")  # storage, not training: the same runs either way
        return json.loads(json.dumps(d, sort_keys=True))


class Axis(_Strict):
    path: str
    """Dotted path of the field the axis sets ("optimizer.lr", "phases.0.steps", or "phases": a whole curriculum)."""
    values: list[Any] = Field(min_length=1)
    """The values the field takes, one condition each."""
    labels: list[str] | None = None
    """Names for the values in tables and result columns (e.g. "situation-first" for a phase list)."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, v, info: ValidationInfo):
        n = len(info.data.get("values", []))
        if v is not None and len(v) != n:
            raise ValueError(f"{len(v)} labels for {n} values")
        return v


class ExperimentSpec(RunConfig):
    """A whole experiment: a base config, seeds and sweep axes."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Experiment name (letters, digits, _ . -)."""
    description: str = ""
    seeds: int | list[int] = 16
    """Init seeds: a count (0..n-1) or an explicit list."""
    data_seeds: list[int] | None = None
    """Data-order seeds crossed with the init seeds; by default each run's data seed is its init seed."""
    sweep: dict[str, Axis] = Field(default_factory=dict)
    """Axis name -> {path, values}, or "dotted.path" -> [values]."""

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int):
            if not 1 <= v <= 10_000_000:
                raise ValueError("must be between 1 and 10000000")
            return list(range(v))
        if not v or len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("must be distinct non-negative integers")
        return v

    @field_validator("sweep", mode="before")
    @classmethod
    def _axes(cls, v):
        if not isinstance(v, dict):
            raise ValueError("must be a table of axes")
        out = {}
        for key, axis in v.items():
            if isinstance(axis, list):
                name = key.removeprefix("world.knobs.").replace(".", "_")
                out[name] = {"path": key, "values": axis}
            else:
                out[key] = axis
        return out

    def base_config(self) -> dict:
        return self.model_dump(include=set(RunConfig.model_fields), exclude_none=False)


@dataclass(frozen=True)
class Condition:
    """One grid point of the sweep."""

    axes: dict[str, Any]  # axis name -> value
    config: RunConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.axes.items()) or "base"


@dataclass(frozen=True)
class Run:
    run_id: str
    condition: Condition
    seed: int
    data_seed: int


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a TOML spec; SpecError with one line naming the problem otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read spec ({e.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: malformed TOML: {e}") from None
    return parse_spec(raw, source=str(path))


def parse_spec(raw: dict, source: str = "spec") -> ExperimentSpec:
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(f"{source}: {_one_line(e)}") from None
    conditions(spec, source=source)  # validates every grid point now, before anything runs
    return spec


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "missing required field"
    got = err.get("input")
    shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
    return f"{loc}: {msg}{shown}" if loc else f"{msg}"


def _set_path(d: dict, path: str, value: Any, axis: str) -> None:
    parts = path.split(".")
    node: Any = d
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise SpecError(f"sweep.{axis}.path: {path!r}: index {p!r} out of range")
            p = int(p)  # type: ignore[assignment]
        elif not isinstance(node, dict) or p not in node:
            raise SpecError(f"sweep.{axis}.path: {path!r} is not a field of the spec")
        if last:
            node[p] = copy.deepcopy(value)
        else:
            node = node[p]


def conditions(spec: ExperimentSpec, source: str = "spec") -> list[Condition]:
    """The grid of conditions, each validated as a full config."""
    base = spec.base_config()  # knob defaults are filled in, so knob paths resolve
    names = list(spec.sweep)
    out = []
    for picks in itertools.product(*(range(len(spec.sweep[n].values)) for n in names)):
        d = copy.deepcopy(base)
        shown = {}
        for n, i in zip(names, picks):
            axis = spec.sweep[n]
            _set_path(d, axis.path, axis.values[i], n)
            shown[n] = axis.labels[i] if axis.labels else axis.values[i]
        try:
            cfg = RunConfig.model_validate(d)
        except ValidationError as e:
            where = ", ".join(f"{n}={v!r}" for n, v in shown.items())
            raise SpecError(f"{source}: {_one_line(e)} [sweep {where}]") from None
        out.append(Condition(shown, cfg))
    return out


def run_id(config: dict, seed: int, data_seed: int) -> str:
    blob = json.dumps({"config": config, "seed": seed, "data_seed": data_seed, "v": RESULTS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand(spec: ExperimentSpec) -> list[Run]:
    """Every run of the experiment, condition by condition, seed by seed."""
    runs = []
    for cond in conditions(spec):
        cfg = cond.config.normalised()
        for seed in spec.seeds:
            for data_seed in spec.data_seeds if spec.data_seeds is not None else [seed]:
                runs.append(Run(run_id(cfg, seed, data_seed), cond, seed, data_seed))
    return runs


def fingerprint(spec: ExperimentSpec) -> dict:
    """What a results folder pins: everything but seeds, descriptions and axis values."""
    d = spec.model_dump()
    d.pop("seeds"), d.pop("data_seeds"), d.pop("description"), d.pop("save_weights")
    d["sweep"] = {n: a["path"] for n, a in d["sweep"].items()}  # values and labels may grow
    return json.loads(json.dumps(d, sort_keys=True))


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Dotted path of the first place two JSON-like values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}{k}"
            d = first_difference(a[k], b[k], f"{path}{k}.")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}{i}.")
            if d:
                return d
        return None
    return None if a == b else path.rstrip(".") or "(root)"
