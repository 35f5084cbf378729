"""Experiment specs: TOML files validated by pydantic, expanded into conditions and runs.

A spec names a world (and its knobs), a model, an optimiser, a curriculum of phases, the seeds and
the sweep axes. Each sweep axis is a dotted path into the spec ("optimizer.lr", "phases.0.steps",
"world.knobs.cue_copies") with a list of values, or a *bundle* axis whose values are tables of dotted
paths -> values (an intervention that sets several fields at once); conditions are the grid over all
axes, applied in the order written. A run is a condition plus an init seed and a data-order seed; its
id hashes the condition's normalised config (every field, defaults filled in; switched-off heads, empty
phases, the momentum of Adam and storage-only settings dropped) with both seeds and the results format:
no field is ever left out for history's sake (results format 4; `sweep.format3` keeps how format 3 did it,
for `deceptionlab migrate`; docs/results-format.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..worlds import WorldError, add_search_folder, get_world, make_world

RESULTS_VERSION = 4  # bump when stored rows or run ids change meaning; part of every run id (docs/results-format.md)
RESERVED_COLUMNS = frozenset(
    {"run_id", "condition", "condition_index", "seed", "data_seed", "world", "config", "experiment", "verdict", "fit", "train_accuracy"}
)  # result columns an axis's column would overwrite


class SpecError(ValueError):
    """A spec problem, worded as one line naming the field (characters that would break the line, such as a
    newline in a quoted TOML key, are shown escaped)."""

    def __init__(self, message: str):
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # no "16" or true for an int, no 1 for a bool


class WorldSpec(_Strict):
    name: str = "bitworld"
    """A world's name (`deceptionlab worlds` lists them), or a dotted path "module:Class" to one you wrote
    (docs/worlds.md); the module is looked up on sys.path, then beside the spec, then in the working directory."""
    knobs: dict[str, Any] = Field(default_factory=dict)
    """The world's knobs; unknown knobs are errors."""


class ModelSpec(_Strict):
    depth: int = Field(2, ge=1, le=16)
    """Hidden layers of the MLP trunk."""
    width: int = Field(64, ge=1, le=4096)
    """Units per hidden layer."""
    compute_penalty: float | None = Field(None, ge=0, le=100)
    """None: a plain MLP. A number beta >= 0: an early-exit (ponder) model with an exit after every hidden
    layer, trained with beta * E[exit layer] added to its loss (0: the early-exit model, unpenalised)."""
    ponder_penalty: Literal["layers", "kl"] = "layers"
    """With `compute_penalty`: "layers" adds beta * E[exit layer]; "kl" (PonderNet) adds beta * KL(halting
    distribution || a geometric prior) instead."""


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


class StoppingSpec(_Strict):
    """Early stopping: each member stops (its weights freeze) once it fits its training data, members
    stopping one by one inside a batched ensemble."""

    enabled: bool = False
    """Stop a member at a checkpoint of the last phase where its training accuracy is at least `verdict.fit_threshold`."""
    patience: int = Field(1, ge=1, le=1000)
    """Checkpoints in a row at or above the fit threshold before the member stops."""


class RunConfig(_Strict):
    """Everything one condition's runs share: what the run id hashes, with the seeds."""

    world: WorldSpec = Field(default_factory=WorldSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    phases: list[PhaseSpec] = Field(min_length=1)
    verdict: VerdictSpec = Field(default_factory=VerdictSpec)
    early: EarlySpec = Field(default_factory=EarlySpec)
    early_stopping: StoppingSpec = Field(default_factory=StoppingSpec)
    log_every: int = Field(100, ge=1)
    """Steps between trajectory checkpoints."""
    save_weights: bool = False
    """Store each run's final weights (weights/ in the results folder): loss barriers need them."""
    draw_own_goal: bool = False
    """Draw each run's own goal (the world knob `own_goal`) from the world's declared `own_goals`, seeded by
    the run's seed ("many Pascals"; docs/deception.md); the drawn goal is part of the run's config and id
    (so a world that declares a further goal draws anew: such runs get new ids)."""

    @model_validator(mode="after")
    def _check_world(self) -> "RunConfig":
        try:
            world = make_world(self.world.name, self.world.knobs)
        except WorldError as e:
            raise ValueError(str(e)) from None
        self.world.knobs = world.knobs.model_dump()
        world_cls = type(world)
        if self.draw_own_goal and not world_cls.own_goals:
            raise ValueError(f"draw_own_goal: world {self.world.name!r} declares no own goals to draw from")
        if self.draw_own_goal and "own_goal" in self.world.knobs and self.world.knobs["own_goal"] != world_cls.Knobs.model_fields["own_goal"].default:
            raise ValueError(f"draw_own_goal: draws each run's own goal, so world.knobs.own_goal = {self.world.knobs['own_goal']!r} would be ignored; set one or the other")
        if self.model.compute_penalty is not None and world_cls.family != "mlp":
            raise ValueError(f"model.compute_penalty: early-exit models exist for the mlp family only ({self.world.name}'s models are {world_cls.family!r})")
        if self.model.compute_penalty is None and self.model.ponder_penalty != "layers":
            raise ValueError("model.ponder_penalty: applies to early-exit models only (set model.compute_penalty)")
        from ..families import family_for  # late: families import the trainer, which imports nothing of specs

        family = family_for(world, self)
        lacking = family.check_world(world)  # the family's world protocol (docs/worlds.md)
        if lacking:
            raise ValueError(f"world.name: {self.world.name!r} cannot be trained by its model family {family.name!r}: {'; '.join(lacking)}")
        refused = family.check_config(self, world)  # spec fields the family cannot honour (its capabilities)
        if refused:
            raise ValueError(refused[0])
        for i, ph in enumerate(self.phases):
            if ph.algorithm != "supervised" and "policy" not in ph.heads:
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
                phases.append({"name": ph.name, "steps": ph.steps, "heads": heads, "algorithm": ph.algorithm})
        d["phases"] = phases
        if d["optimizer"]["name"] == "adam":
            d["optimizer"].pop("momentum")  # Adam has none: the same runs whatever it says
        d.pop("save_weights")  # storage, not training: the same runs either way
        return json.loads(json.dumps(d, sort_keys=True))


class Axis(_Strict):
    path: str | None = None
    """Dotted path of the field the axis sets ("optimizer.lr", "phases.0.steps", or "phases": a whole
    curriculum). Left out: a bundle axis, whose every value is a table of dotted paths -> values."""
    values: list[Any] = Field(min_length=1)
    """The values the field takes, one condition each."""
    labels: list[str] | None = None
    """Names for the values in tables and result columns (e.g. "situation-first" for a phase list).
    A bundle axis without labels names each value by its settings ("none" for the empty table)."""
    baseline: str | None = None
    """The label of the no-intervention value: marks the axis as the one `deceptionlab interventions`
    compares against that value."""

    @field_validator("labels")
    @classmethod
    def _labels(cls, v, info: ValidationInfo):
        n = len(info.data.get("values", []))
        if v is not None and len(v) != n:
            raise ValueError(f"{len(v)} labels for {n} values")
        if v is not None and len(set(v)) != len(v):
            raise ValueError("labels must be distinct")
        return v

    @model_validator(mode="after")
    def _bundles(self) -> "Axis":
        if self.path is None:
            for i, v in enumerate(self.values):
                if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
                    raise ValueError(f"values.{i}: an axis without a path takes tables of dotted paths -> values (got {v!r})")
            if self.labels is None:
                self.labels = [", ".join(f"{k}={v}" for k, v in b.items()) or "none" for b in self.values]
        if self.baseline is not None and self.baseline not in self.shown():
            raise ValueError(f"baseline: {self.baseline!r} is not one of the axis's labels ({', '.join(map(str, self.shown()))})")
        return self

    def shown(self) -> list:
        """The values as tables and result columns show them: the labels, or the values themselves."""
        return list(self.labels) if self.labels else list(self.values)

    def settings(self, i: int) -> dict[str, Any]:
        """Dotted path -> value that the axis's i-th value sets."""
        return dict(self.values[i]) if self.path is None else {self.path: self.values[i]}


class ExperimentSpec(RunConfig):
    """A whole experiment: a base config, seeds and sweep axes."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Experiment name (letters, digits, _ . -)."""
    description: str = ""
    seeds: int | list[int] = Field(16, validate_default=True)
    """Init seeds: a count (0..n-1) or an explicit list."""
    data_seeds: list[int] | None = None
    """Data-order seeds crossed with the init seeds; by default each run's data seed is its init seed."""
    sweep: dict[str, Axis] = Field(default_factory=dict)
    """Axis name -> {path, values}, or "dotted.path" -> [values]."""

    @field_validator("seeds", "data_seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int):
            if not 1 <= v <= 10_000_000:
                raise ValueError("must be between 1 and 10000000")
            return list(range(v))
        if v is not None and (not v or len(set(v)) != len(v) or min(v) < 0):  # a repeated seed would be a run twice
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
        for name in out:
            if not name or not name.isprintable() or name != name.strip():
                raise ValueError(f"{name!r}: an axis name is printable text without surrounding spaces (it names a result column)")
            if name in RESERVED_COLUMNS:
                raise ValueError(f"{name}: an axis cannot be called {name!r}, a column every result row has (rename the axis)")
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
    config: RunConfig  # the condition's config, with this run's own goal where the condition draws it


def run_config(cond: Condition, seed: int) -> RunConfig:
    """The config of the run with init seed `seed` in `cond`: the condition's, with the own goal drawn from
    the world's own_goals by the seed when the condition sets draw_own_goal."""
    cfg = cond.config
    if not cfg.draw_own_goal:
        return cfg
    from ..core.rng import derive_seed

    goals = get_world(cfg.world.name).own_goals
    knobs = {**cfg.world.knobs, "own_goal": goals[derive_seed(seed, "own_goal") % len(goals)]}
    return cfg.model_copy(update={"world": cfg.world.model_copy(update={"knobs": knobs})})


def read_spec_file(path: str | Path) -> dict:
    """A TOML spec file parsed (any kind), its folder added to the world search path; SpecError with one line otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(f"{path}: cannot read spec ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not a TOML spec (not UTF-8 text at byte {e.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: malformed TOML: {e}") from None
    add_search_folder(path.parent)  # a world written beside the spec is found by its dotted path
    return raw


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a TOML training spec; SpecError with one line naming the problem otherwise."""
    return parse_spec(read_spec_file(path), source=str(path))


MAX_CONDITIONS = 1_000_000  # past this many conditions a sweep starts only with --yes (sweep.experiment.check_cost)
FULL_CHECK = 10_000  # grids up to this many conditions are validated point by point when the spec is read
SAMPLE_CHECK = 256  # larger grids: this many points, evenly spread, when read; every point while planning


def parse_spec(raw: dict, source: str = "spec") -> ExperimentSpec:
    """A validated training spec. Every grid point of a grid up to FULL_CHECK conditions is validated now; a larger
    grid (validating a point takes milliseconds: a million take hours) on SAMPLE_CHECK points spread over it, and
    point by point when its runs are planned (`iter_conditions`), before anything is written."""
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(f"{source}: {_one_line(e)}") from None
    n = grid_size(spec)
    if n <= FULL_CHECK:
        for _ in iter_conditions(spec, source=source):
            pass
    else:
        base = spec.base_config()
        for index in sorted({0, n - 1, *(i * (n - 1) // (SAMPLE_CHECK - 1) for i in range(SAMPLE_CHECK))}):
            _normalised(condition_at(spec, index, source, base), source)
    return spec


def _one_line(e: ValidationError) -> str:
    err = e.errors()[0]
    union_tags = re.compile(r"(int|float|str|bool|list\[.*\]|dict\[.*\])")  # "seeds.int": which member of `int | list[int]` failed
    loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and union_tags.fullmatch(p)))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "missing required field"
    got = err.get("input")
    shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
    return f"{loc}: {msg}{shown}" if loc else f"{msg}"


def _set_path(d: dict, path: str, value: Any, where: str) -> None:
    """Set the field at dotted `path` of `d`; `where` names the spec entry for errors ("sweep.lr.path")."""
    parts = path.split(".")
    node: Any = d
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise SpecError(f"{where}: {path!r}: index {p!r} out of range")
            p = int(p)  # type: ignore[assignment]
        elif not isinstance(node, dict) or p not in node:
            raise SpecError(f"{where}: {path!r} is not a field of the spec")
        if last:
            node[p] = copy.deepcopy(value)
        else:
            node = node[p]


def grid_size(spec: ExperimentSpec) -> int:
    """The number of grid points (conditions) of the sweep: the product of its axes' lengths."""
    n = 1
    for axis in spec.sweep.values():
        n *= len(axis.values)
    return n


def condition_at(spec: ExperimentSpec, index: int, source: str = "spec", base: dict | None = None) -> Condition:
    """Grid point `index` of the sweep, in the order of itertools.product over the axes (the last axis fastest),
    validated as a full config; built from the index alone, so a huge grid is never listed."""
    base = spec.base_config() if base is None else base  # knob defaults are filled in, so knob paths resolve
    names = list(spec.sweep)
    picks = []
    for n in reversed(names):  # mixed radix, the last axis the lowest digit
        index, i = divmod(index, len(spec.sweep[n].values))
        picks.append(i)
    d = copy.deepcopy(base)
    shown = {}
    for n, i in zip(names, reversed(picks)):
        axis = spec.sweep[n]
        for path, value in axis.settings(i).items():
            _set_path(d, path, value, f"sweep.{n}.path" if axis.path is not None else f"sweep.{n}.values.{i}")
        shown[n] = axis.shown()[i]
    try:
        cfg = RunConfig.model_validate(d)
    except ValidationError as e:
        where = ", ".join(f"{n}={v!r}" for n, v in shown.items())
        raise SpecError(f"{source}: {_one_line(e)} [sweep {where}]") from None
    return Condition(shown, cfg)


def _normalised(cond: Condition, source: str) -> dict:
    """The condition's normalised config; SpecError when it trains nothing."""
    norm = cond.config.normalised()
    if not norm["phases"]:
        where = f" [sweep {', '.join(f'{n}={v!r}' for n, v in cond.axes.items())}]" if cond.axes else ""
        raise SpecError(f"{source}: phases: nothing is trained (every phase has 0 steps, or no head of the world with a weight above 0){where}")
    return norm


def iter_conditions(spec: ExperimentSpec, source: str = "spec", report=None) -> Iterator[tuple[Condition, dict]]:
    """The grid of conditions, one at a time with its normalised config, each validated as a full config, no two
    the same runs. Streams: what it keeps is 64 bits per condition (to find two that are the same runs), not the
    conditions. `report(done, total)`, if given, is called after each condition."""
    base = spec.base_config()
    total = grid_size(spec)
    # 64-bit digests of the normalised configs, as strong as the 64-bit run ids they stand for (a 1e6-point grid:
    # a chance of about 3e-8 that two different conditions share one), at a few dozen bytes per condition
    seen: dict[int, int] = {}
    for index in range(total):
        cond = condition_at(spec, index, source, base)
        norm = _normalised(cond, source)
        key = int.from_bytes(hashlib.sha256(json.dumps(norm, sort_keys=True).encode()).digest()[:8], "big")
        if key in seen:
            first = condition_at(spec, seen[key], source, base)
            raise SpecError(f"{source}: sweep: conditions [{first.label}] and [{cond.label}] are the same runs (equal once inert settings are dropped); drop one")
        seen[key] = index
        if report is not None:
            report(index + 1, total)
        yield cond, norm


def conditions(spec: ExperimentSpec, source: str = "spec") -> list[Condition]:
    """The grid of conditions, each validated as a full config, no two the same runs (a list: see `iter_conditions`)."""
    return [cond for cond, _ in iter_conditions(spec, source)]


def run_id(config: dict, seed: int, data_seed: int) -> str:
    blob = json.dumps({"config": config, "seed": seed, "data_seed": data_seed, "v": RESULTS_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def condition_runs(spec: ExperimentSpec, cond: Condition, norm: dict | None = None, pairs=None) -> Iterator[Run]:
    """The runs of one condition, seed by seed (or those of the (seed, data_seed) `pairs` given); `norm`: the
    condition's normalised config, when known."""
    configs: dict = {}  # one normalised config per condition (and drawn goal): normalising builds the world
    if pairs is None:
        pairs = [(seed, ds) for seed in spec.seeds for ds in (spec.data_seeds if spec.data_seeds is not None else [seed])]
    for seed, data_seed in pairs:
        cfg = run_config(cond, seed)
        key = None if cfg is cond.config else json.dumps(cfg.world.knobs, sort_keys=True)
        if key not in configs:
            configs[key] = (cfg, norm if key is None and norm is not None else cfg.normalised())
        cfg, n = configs[key]
        yield Run(run_id(n, seed, data_seed), cond, seed, data_seed, cfg)


def iter_runs(spec: ExperimentSpec, report=None) -> Iterator[Run]:
    """Every run of the experiment, condition by condition, seed by seed, one at a time."""
    for cond, norm in iter_conditions(spec, report=report):
        yield from condition_runs(spec, cond, norm)


def expand(spec: ExperimentSpec) -> list[Run]:
    """Every run of the experiment, condition by condition, seed by seed (a list: see `iter_runs`)."""
    return list(iter_runs(spec))


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
