"""Measurement kinds: specs whose runs are not training runs, run through the same planner, executors and
store as any sweep (so they resume, run on Ray, and load with `deceptionlab.load`).

A spec's top-level `kind` chooses (docs/measurements.md, "Measurement kinds"):
- "train" (the default, `sweep.spec.ExperimentSpec`): training runs;
- "imitation" (`ImitationSpec`): speed's compute per class. A run is (class, depth, width, seed): an MLP of
  that architecture, initialised from the seed, trained full batch to imitate the class's reference
  decisions (`train.imitation`) and judged with the lab's verdict rule. Runs of one architecture form one
  chunk (every class and seed as one ensemble; seed s gives every class the same init: a paired comparison);
- "prior" (`PriorSpec`): the prior volume of each class on a world. A run is a block of `prior.block`
  random draws of the world's model family, drawn from the run's seed; its row holds the block's verdict
  counts, over all draws and over those fitting the training data. `measure.prior_volume.class_prior_table`
  sums them over the frame;
- "counting" (`CountingSpec`): the counting argument (issue 15). A run is (condition, seed): one set of NNGP
  chains of the condition's MLP conditioned on the training data, naive-count draws and random networks, all
  from the run's seed; `sweep` axes set fields of the run as in a training spec (e.g. model.weight_scale).
  `measure.sampled.counting_table` pools a condition's runs into P_B, P_naive, P_prior (and P_SGD) per class;
- "function_prior" (`FunctionPriorSpec`): P_prior(f) of random MLPs on a finite input set (Valle-Perez et al.
  2019). A run is one block of draws; its row holds the distinct truth tables and their counts.
The last two sample with the measure layer's samplers, which this layer may not import (`SAMPLED_ELSEWHERE`):
the api passes their chunk work to `run_experiment`.

Each kind supplies its spec model, its conditions and runs (a `Run` whose config has `normalised()` and
`world`, so run ids and world folders work as for training runs), its chunking, its cost estimate and its
chunk's work, which returns the chunk's rows as an Arrow table (columns in `core.schema.KIND_COLUMNS`).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import pyarrow as pa
import torch
from pydantic import Field, field_validator, model_validator

from ..core.rng import generator
from ..core.scoring import CLASSES, TOLERANCE, VERDICTS, class_scores, verdicts
from ..families import get_family
from ..models import random_ensemble
from ..train.imitation import forward_flops, imitate
from ..worlds import WorldError, make_world
from .spec import Axis, Condition, Run, SpecError, VerdictSpec, WorldSpec, _Strict, run_id

FLOP_RATE = 3e10  # as sweep.experiment's: for estimates only
DRAWS_PER_CHUNK = 32768  # prior draws one chunk holds (a few seconds of work)


def _seed_list(v):
    if isinstance(v, int):
        if not 1 <= v <= 10_000_000:
            raise ValueError("must be between 1 and 10000000")
        return list(range(v))
    if not v or len(set(v)) != len(v) or min(v) < 0:
        raise ValueError("must be distinct non-negative integers")
    return v


class _MeasurementSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Experiment name (letters, digits, _ . -)."""
    description: str = ""
    world: WorldSpec = Field(default_factory=WorldSpec)
    verdict: VerdictSpec = Field(default_factory=VerdictSpec)
    seeds: int | list[int] = Field(4, validate_default=True)
    """The runs' seeds: a count (0..n-1) or an explicit list."""

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        return _seed_list(v)

    @model_validator(mode="after")
    def _check_world(self):
        try:
            world = make_world(self.world.name, self.world.knobs)
        except WorldError as e:
            raise ValueError(str(e)) from None
        self.world.knobs = world.knobs.model_dump()
        return self

    def world_normalised(self) -> dict:
        return {"name": self.world.name, "knobs": json.loads(json.dumps(self.world.knobs, sort_keys=True))}


# -- imitation ---------------------------------------------------------------------------------------


class ImitationSection(_Strict):
    depths: list[int] = Field([1, 2, 3], min_length=1)
    """Hidden layers tried (1 to 16)."""
    widths: list[int] = Field([1, 2, 3, 4, 8, 16], min_length=1)
    """Units per hidden layer tried (1 to 4096)."""
    classes: list[str] | None = None
    """The classes imitated (default: every class whose reference the world's model family can imitate)."""
    steps: int = Field(400, ge=1, le=1_000_000)
    """Full-batch Adam steps: the inputs are few, so every step sees them all."""
    lr: float = Field(0.03, gt=0, le=10)
    """Adam's learning rate: high, so small nets get there in few steps; imitation has no noise to fit."""

    @field_validator("depths")
    @classmethod
    def _depths(cls, v):
        if any(not 1 <= d <= 16 for d in v) or len(set(v)) != len(v):
            raise ValueError("must be distinct whole numbers from 1 to 16")
        return v

    @field_validator("widths")
    @classmethod
    def _widths(cls, v):
        if any(not 1 <= w <= 4096 for w in v) or len(set(v)) != len(v):
            raise ValueError("must be distinct whole numbers from 1 to 4096")
        return v


class ImitationSpec(_MeasurementSpec):
    """kind = "imitation": the compute each class needs (speed, claim C6)."""

    kind: Literal["imitation"]
    imitation: ImitationSection = Field(default_factory=ImitationSection)

    @model_validator(mode="after")
    def _check_classes(self) -> "ImitationSpec":
        world = make_world(self.world.name, self.world.knobs)
        known = [c for c in CLASSES if c in world.references]
        for c in self.imitation.classes or []:
            if c not in known:
                raise ValueError(f"imitation.classes: {c!r} has no reference on {self.world.name} (classes: {', '.join(known)})")
        if self.imitation.classes is not None and len(set(self.imitation.classes)) != len(self.imitation.classes):
            raise ValueError("imitation.classes: must be distinct")
        return self

    def classes(self) -> list[str]:
        world = make_world(self.world.name, self.world.knobs)
        return list(self.imitation.classes or [c for c in CLASSES if c in world.references])

    def axes(self) -> list[str]:
        return ["class", "depth", "width"]


class ImitationRun(_Strict):
    """What one imitation run's id hashes (with its seed)."""

    kind: Literal["imitation"] = "imitation"
    world: WorldSpec
    cls: str
    depth: int
    width: int
    steps: int
    lr: float
    verdict: VerdictSpec

    def normalised(self) -> dict:
        d = self.model_dump()
        d["class"] = d.pop("cls")
        return json.loads(json.dumps(d, sort_keys=True))


def _imitation_runs(spec: ImitationSpec) -> list[Run]:
    runs = []
    for cls in spec.classes():
        for depth in spec.imitation.depths:
            for width in spec.imitation.widths:
                cfg = ImitationRun(world=spec.world, cls=cls, depth=depth, width=width, steps=spec.imitation.steps,
                                   lr=spec.imitation.lr, verdict=spec.verdict)
                cond = Condition({"class": cls, "depth": depth, "width": width}, cfg)
                norm = cfg.normalised()
                runs += [Run(run_id(norm, s, s), cond, s, s, cfg) for s in spec.seeds]
    return runs


def imitation_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> pa.Table:
    """Train one architecture's runs (any classes, any seeds) as one ensemble; their rows."""
    cfg: ImitationRun = runs[0].config
    world = make_world(cfg.world.name, cfg.world.knobs)
    family = get_family(world.family)
    x, labels, n_outputs = family.imitation_data(world)
    y = torch.stack([labels[r.config.cls] for r in runs])
    gens = [generator(r.seed, "imitation/init") for r in runs]
    model = imitate(x, y, cfg.depth, cfg.width, gens, cfg.steps, cfg.lr, n_outputs,
                    on_steps=(lambda k: on_fraction(k / cfg.steps)) if on_fraction is not None else None)
    evaluator = family.evaluator(world)
    res = evaluator.score_outputs(evaluator.outputs(model))
    scores = class_scores(res["agreement"], evaluator.discriminating, evaluator.weights)
    got = verdicts(scores, res["train_accuracy"], cfg.verdict.threshold, cfg.verdict.fit_threshold)
    flops = forward_flops(world.input_dim, cfg.depth, cfg.width, n_outputs)
    n = len(runs)
    cols: dict[str, list] = {
        "run_id": [r.run_id for r in runs], "condition": [r.condition.label for r in runs],
        "class": [r.config.cls for r in runs], "depth": [cfg.depth] * n, "width": [cfg.width] * n,
        "seed": [r.seed for r in runs], "data_seed": [r.data_seed for r in runs], "world": [world.name] * n,
        "config": [json.dumps(r.config.normalised(), sort_keys=True) for r in runs], "flops": [flops] * n,
        "verdict": got, "reached": [v == r.config.cls for v, r in zip(got, runs)], "train_accuracy": res["train_accuracy"].tolist(),
    }
    for i, c in enumerate(CLASSES):
        cols[f"score_{c}"] = scores[:, i].tolist()
    return pa.table(cols)


def _imitation_seconds(cfg: ImitationRun) -> float:
    world = make_world(cfg.world.name, cfg.world.knobs)
    n = sum(len(c.x) for c in world.probe_cells) + len(world.datasets[world.fit_dataset].x)
    return 3 * forward_flops(world.input_dim, cfg.depth, cfg.width) * n * cfg.steps / FLOP_RATE


# -- prior volume on a world -------------------------------------------------------------------------


class PriorSection(_Strict):
    depth: int = Field(2, ge=1, le=16)
    """Hidden layers of the drawn networks (a transformer world: blocks)."""
    width: int = Field(64, ge=1, le=4096)
    """Units per hidden layer (a transformer world: the model width)."""
    block: int = Field(2048, ge=1, le=65536)
    """Draws per run: run k draws `block` networks in one batch from its seed k."""
    fit_rows: int | None = Field(None, ge=1)
    """Condition on this many training inputs, drawn once from `seed`, instead of all."""
    seed: int = Field(0, ge=0)
    """The stream: run k draws from generator(k, "prior/<seed>/draws"), and the `fit_rows` subset is drawn
    from this seed; another seed, other draws (the CLI's --seed)."""


class PriorSpec(_MeasurementSpec):
    """kind = "prior": P_prior(class) and P_prior(class | fit) on a world (claim C5). `seeds` are the runs:
    each one block of draws, so the draws are len(seeds) x prior.block."""

    kind: Literal["prior"]
    prior: PriorSection = Field(default_factory=PriorSection)

    @model_validator(mode="after")
    def _check_fit_rows(self) -> "PriorSpec":
        world = make_world(self.world.name, self.world.knobs)
        n_fit = len(world.datasets[world.fit_dataset].x)
        if self.prior.fit_rows is not None and self.prior.fit_rows > n_fit:
            raise ValueError(f"prior.fit_rows: must be between 1 and {n_fit}, {self.world.name}'s training inputs (got {self.prior.fit_rows})")
        return self

    def axes(self) -> list[str]:
        return []


class PriorRun(_Strict):
    kind: Literal["prior"] = "prior"
    world: WorldSpec
    prior: PriorSection
    verdict: VerdictSpec

    def normalised(self) -> dict:
        return json.loads(json.dumps(self.model_dump(), sort_keys=True))


def _prior_runs(spec: PriorSpec) -> list[Run]:
    cfg = PriorRun(world=spec.world, prior=spec.prior, verdict=spec.verdict)
    cond = Condition({}, cfg)
    norm = cfg.normalised()
    return [Run(run_id(norm, s, s), cond, s, s, cfg) for s in spec.seeds]


def fit_subset(n_fit: int, fit_rows: int | None, seed: int) -> torch.Tensor:
    """The training inputs a prior draw must fit: all, or `fit_rows` of them drawn from `seed` (as
    `class_prior` drew them before it was a spec kind, so a subset keeps its acceptance: the acceptance
    hangs on which rows are drawn far more than on the draws, from 0.2% to 22% for 6 bitworld rows; and
    measure.counting conditions on the same subset)."""
    if not fit_rows:
        return torch.arange(n_fit)
    return torch.randperm(n_fit, generator=torch.Generator().manual_seed(seed + 1))[:fit_rows]


def draw_block(world, prior: PriorSection, verdict: VerdictSpec, seed: int, evaluator=None) -> dict[str, Any]:
    """One block of `prior.block` random draws of `world`'s model family from `seed`: the verdict counts of
    all draws and of those fitting the training inputs (`fit_subset`)."""
    family = get_family(world.family)
    evaluator = evaluator or family.evaluator(world)
    n_fit = len(evaluator.fit_y)
    rows = fit_subset(n_fit, prior.fit_rows, prior.seed)
    g = generator(seed, f"prior/{prior.seed}/draws")
    if hasattr(family, "random_ensemble"):  # a family with its own init (e.g. transformers)
        model = family.random_ensemble(world, prior.depth, prior.width, prior.block, g)
    else:
        model = random_ensemble(world.input_dim, prior.depth, prior.width, family.n_outputs(world), prior.block, g)
    out = evaluator.outputs(model)  # (B, probe inputs + training inputs)
    scored = evaluator.score_outputs(out)
    scores = class_scores(scored["agreement"], evaluator.discriminating, evaluator.weights)
    every = verdicts(scores, scored["train_accuracy"], verdict.threshold, verdict.fit_threshold)
    fit_acc = (out[:, evaluator.n_probe :][:, rows] == evaluator.fit_y[rows]).float().mean(1)
    accepted = fit_acc >= verdict.fit_threshold - TOLERANCE
    fitting = verdicts(scores[accepted], fit_acc[accepted], verdict.threshold, verdict.fit_threshold) if accepted.any() else []
    row: dict[str, Any] = {"draws": prior.block, "accepted": int(accepted.sum()), "fit_rows": len(rows), "n_fit": n_fit}
    for v in VERDICTS:
        row[f"count_{v}"] = sum(1 for x in every if x == v)
    for v in VERDICTS:
        row[f"fit_count_{v}"] = sum(1 for x in fitting if x == v)
    return row


def prior_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> pa.Table:
    cfg: PriorRun = runs[0].config
    world = make_world(cfg.world.name, cfg.world.knobs)
    evaluator = get_family(world.family).evaluator(world)
    rows = []
    for r in runs:
        rows.append(draw_block(world, cfg.prior, cfg.verdict, r.seed, evaluator))
        if on_fraction is not None:
            on_fraction(1 / len(runs))
    n = len(runs)
    cols: dict[str, list] = {
        "run_id": [r.run_id for r in runs], "condition": [r.condition.label for r in runs], "seed": [r.seed for r in runs],
        "data_seed": [r.data_seed for r in runs], "world": [world.name] * n, "config": [json.dumps(cfg.normalised(), sort_keys=True)] * n,
    }
    for key in rows[0]:
        cols[key] = [row[key] for row in rows]
    return pa.table(cols)


def _prior_seconds(cfg: PriorRun) -> float:
    world = make_world(cfg.world.name, cfg.world.knobs)
    n = sum(len(c.x) for c in world.probe_cells) + len(world.datasets[world.fit_dataset].x)
    return 2 * forward_flops(world.input_dim, cfg.prior.depth, cfg.prior.width) * n * cfg.prior.block / FLOP_RATE


# -- counting: P_B(class | S) beside the naive count and P_prior (issue 15) -----------------------------


class CountingModel(_Strict):
    """The MLP whose NNGP (and random draws) are counted: the lab's MLP family at its init."""

    depth: int = Field(2, ge=1, le=16)
    """Hidden layers."""
    width: int = Field(64, ge=1, le=4096)
    """Units per hidden layer (the NNGP sees it through the hidden bias variance 1/(3 width))."""
    weight_scale: float = Field(1.0, ge=1e-3, le=1e3)
    """Every weight variance of the init times this (ordered < 1 < chaotic; 1 is PyTorch's default init)."""


class CountingSection(_Strict):
    chains: int = Field(200, ge=2, le=100_000)
    """Elliptical slice chains per run (run at once)."""
    steps: int = Field(100, ge=4, le=100_000)
    """Kept steps per chain: a run's NNGP samples are chains x steps."""
    burn_in: int = Field(300, ge=0, le=1_000_000)
    """Steps per chain discarded first."""
    naive_samples: int = Field(20_000, ge=0, le=10_000_000)
    """Draws of the naive count per run (uniform over the Boolean functions that fit S); 0 skips it."""
    prior_samples: int = Field(0, ge=0, le=65_536)
    """Random networks per run for P_prior (unconditioned, PyTorch's default init); 0 skips it, and so does a
    weight_scale other than 1 (the draws are of the default init only)."""
    fit_rows: int | None = Field(None, ge=1)
    """Condition on this many training inputs (drawn once from `seed`, as kind "prior" draws them) instead of all."""
    seed: int = Field(0, ge=0)
    """The stream: run k samples from seeds derived from (k, "counting/<seed>/..."); another seed, other samples."""
    finite_chains: int = Field(0, ge=0, le=100_000)
    """Finite-width posterior chains per run (source "finite": the MLP's own weights, conditioned on fitting S;
    measure.counting.finite); 0 skips it (slow at 256 training inputs: docs/counting.md)."""
    finite_steps: int = Field(50, ge=4, le=100_000)
    """Kept steps per finite-width chain."""
    finite_burn_in: int = Field(100, ge=0, le=1_000_000)
    """Exact steps per finite-width chain discarded after it first fits."""
    results: str | None = None
    """A results folder of training runs whose P_SGD(class) goes beside (read when the table is loaded, not
    stored in the runs: the runs whose world and model depth and width match the condition's)."""


class CountingRun(_Strict):
    """What one counting run's id hashes (with its seed): everything but `counting.results`."""

    kind: Literal["counting"] = "counting"
    world: WorldSpec
    model: CountingModel
    counting: CountingSection
    verdict: VerdictSpec

    def normalised(self) -> dict:
        d = self.model_dump()
        d["counting"].pop("results")
        if not d["counting"]["finite_chains"]:  # no finite-width source: the ids runs had before it existed
            for k in ("finite_chains", "finite_steps", "finite_burn_in"):
                d["counting"].pop(k)
        return json.loads(json.dumps(d, sort_keys=True))


class CountingSpec(_MeasurementSpec):
    """kind = "counting": P_B(class | S) of the NNGP of the MLP family, the naive count and P_prior per
    condition (claim C5; docs/measurements.md). `seeds` are the runs of each condition: each one set of
    chains (and naive and prior draws) from its own seed, pooled when the table is loaded. `sweep` axes set
    fields of the run (e.g. "model.weight_scale") as in a training spec."""

    kind: Literal["counting"]
    model: CountingModel = Field(default_factory=CountingModel)
    counting: CountingSection = Field(default_factory=CountingSection)
    sweep: dict[str, Axis] = Field(default_factory=dict)
    """Axis name -> {path, values}: a dotted path into world, model, counting or verdict (e.g. model.weight_scale)."""

    @model_validator(mode="after")
    def _check_counting(self) -> "CountingSpec":
        world = make_world(self.world.name, self.world.knobs)
        if world.family != "mlp":
            raise ValueError(f"world: {self.world.name} is of the {world.family} family; the NNGP is the MLP family's")
        for name, axis in self.sweep.items():
            if axis.path is None or axis.path.split(".")[0] not in ("world", "model", "counting", "verdict") or axis.path == "counting.results":
                raise ValueError(f"sweep.{name}.path: a dotted path into world, model, counting or verdict (e.g. model.weight_scale), got {axis.path!r}")
            if axis.labels is not None and len(axis.labels) != len(axis.values):
                raise ValueError(f"sweep.{name}.labels: one label per value ({len(axis.values)})")
        counting_conditions(self)  # every grid point valid now, before anything runs
        return self

    def axes(self) -> list[str]:
        return list(self.sweep)


def _set_path(d: dict, path: str, value) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        if not isinstance(d.get(k), dict):
            raise ValueError(f"no field {path!r}")
        d = d[k]
    if keys[-1] not in d and keys[0] != "world":
        raise ValueError(f"no field {path!r}")
    d[keys[-1]] = value


def counting_conditions(spec: CountingSpec) -> list[Condition]:
    """The grid of a counting spec: the product of its sweep axes (one condition without any)."""
    import itertools

    from pydantic import ValidationError

    base = {"world": spec.world.model_dump(), "model": spec.model.model_dump(), "counting": spec.counting.model_dump(), "verdict": spec.verdict.model_dump()}
    names = list(spec.sweep)
    out, seen = [], {}
    for combo in itertools.product(*(range(len(spec.sweep[n].values)) for n in names)):
        d = json.loads(json.dumps(base))
        axes = {}
        for n, i in zip(names, combo):
            axis = spec.sweep[n]
            try:
                _set_path(d, axis.path, axis.values[i])
            except ValueError as e:
                raise ValueError(f"sweep.{n}.path: {e}") from None
            axes[n] = axis.labels[i] if axis.labels is not None else axis.values[i]
        try:
            cfg = CountingRun.model_validate(d)
            world = make_world(cfg.world.name, cfg.world.knobs)
        except ValidationError as e:
            from .spec import _one_line

            raise ValueError(f"sweep: condition {', '.join(f'{k}={v}' for k, v in axes.items())}: {_one_line(e)}") from None
        except WorldError as e:
            raise ValueError(f"sweep: {e}") from None
        cfg.world.knobs = world.knobs.model_dump()
        n_fit = len(world.datasets[world.fit_dataset].x)
        if cfg.counting.fit_rows is not None and cfg.counting.fit_rows > n_fit:
            raise ValueError(f"counting.fit_rows: must be between 1 and {n_fit}, {cfg.world.name}'s training inputs (got {cfg.counting.fit_rows})")
        key = json.dumps(cfg.normalised(), sort_keys=True)
        cond = Condition(axes, cfg)
        if key in seen:
            raise ValueError(f"sweep: conditions [{seen[key]}] and [{cond.label}] are the same runs; drop one")
        seen[key] = cond.label
        out.append(cond)
    return out


def _counting_runs(spec: CountingSpec) -> list[Run]:
    runs = []
    for cond in counting_conditions(spec):
        norm = cond.config.normalised()
        runs += [Run(run_id(norm, s, s), cond, s, s, cond.config) for s in spec.seeds]
    return runs


def _counting_seconds(cfg: CountingRun) -> float:
    """A rough estimate, measured on bitworld (256 training inputs, 2x64) on one core: 1e-4 s per chain-step of
    the NNGP sampler (its proposals and completions) and 1.4e-3 s per naive or prior draw (judged)."""
    c = cfg.counting
    return 1e-4 * c.chains * (c.burn_in + c.steps) + 1.4e-3 * (c.naive_samples + c.prior_samples) + 2.0


# -- the Boolean-input function prior (Valle-Perez et al. 2019) ----------------------------------------


class FunctionPriorSection(_Strict):
    inputs: str = Field("boolean:7", pattern=r"^(boolean:[0-9]+|probes:.+)$")
    """The input set: boolean:n (all 2^n inputs in {0,1}^n, binary counting order) or probes:WORLD (a world's
    distinct probe inputs; its knobs in [world])."""
    signed: bool = False
    """boolean:n inputs as +-1 instead of 0/1."""
    widths: list[int] = Field([40, 40])
    """Hidden widths ([] is a linear threshold unit)."""
    init: str = "torch"
    """The parameter distribution (measure.prior.Init: torch, uniform:a, uniform:a1/a2/..., he-uniform, valle-perez,
    kaiming, lecun; each with ,bias=F)."""
    block: int = Field(100_000, ge=1, le=10_000_000)
    """Draws per run: run k draws `block` networks from a seed derived from (k, "function_prior/<seed>")."""
    seed: int = Field(0, ge=0)
    """The stream; another seed, other draws (the CLI's --seed)."""

    @field_validator("widths")
    @classmethod
    def _widths(cls, v):
        if any(not 1 <= w <= 4096 for w in v):
            raise ValueError("hidden widths must be whole numbers from 1 to 4096")
        return v


class FunctionPriorRun(_Strict):
    kind: Literal["function_prior"] = "function_prior"
    world: WorldSpec
    function_prior: FunctionPriorSection

    def normalised(self) -> dict:
        d = self.model_dump()
        if not self.function_prior.inputs.startswith("probes:"):
            d.pop("world")  # boolean inputs see no world
        return json.loads(json.dumps(d, sort_keys=True))


class FunctionPriorSpec(_MeasurementSpec):
    """kind = "function_prior": P_prior(f) of random MLPs on a finite input set, the function frequencies
    whose log correlates with LZ complexity (Valle-Perez et al. 2019; docs/measurements.md). `seeds` are the
    runs, each one block of draws; the draws are len(seeds) x function_prior.block."""

    kind: Literal["function_prior"]
    function_prior: FunctionPriorSection = Field(default_factory=FunctionPriorSection)

    @model_validator(mode="after")
    def _check_function_prior(self) -> "FunctionPriorSpec":
        fp = self.function_prior
        kind, _, arg = fp.inputs.partition(":")
        if kind == "boolean" and not 1 <= int(arg) <= 16:
            raise ValueError(f"function_prior.inputs: boolean:n needs a whole number 1 <= n <= 16, got {fp.inputs!r}")
        if kind == "probes":
            if arg != self.world.name:
                raise ValueError(f"function_prior.inputs: probes:{arg} names another world than [world] ({self.world.name})")
            if fp.signed:
                raise ValueError("function_prior.signed: only boolean:n inputs are signed")
        layers = init_layers(fp.init)
        if layers is not None and layers != len(fp.widths) + 1:
            raise ValueError(f"function_prior.init: {layers} bounds for the {len(fp.widths) + 1} layers of widths {fp.widths} (one per layer, output last)")
        return self

    def axes(self) -> list[str]:
        return []


def init_layers(text: str) -> int | None:
    """Check an init name (measure.prior.Init's grammar, checked here so that a bad spec fails before it
    runs) and return the number of per-layer bounds it gives (None: one rule for every layer)."""
    import re

    base, _, rest = text.partition(",")
    if rest and not re.fullmatch(r"bias=(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", rest):
        raise ValueError(f"function_prior.init: {text!r}: expected NAME,bias=F with F >= 0")
    if base in ("torch", "kaiming", "lecun", "he-uniform", "valle-perez"):
        return None
    m = re.fullmatch(r"uniform:([0-9.eE+/-]+)", base)
    if m:
        try:
            bounds = [float(v) for v in m.group(1).split("/")]
        except ValueError:
            bounds = [-1.0]
        if all(a > 0 and math.isfinite(a) for a in bounds):
            return len(bounds) if len(bounds) > 1 else None
    raise ValueError(f"function_prior.init: unknown init {text!r} (known: torch, uniform:a, uniform:a1/a2/..., he-uniform, valle-perez, kaiming, lecun; each with ,bias=F)")


def _function_prior_runs(spec: FunctionPriorSpec) -> list[Run]:
    cfg = FunctionPriorRun(world=spec.world, function_prior=spec.function_prior)
    cond = Condition({}, cfg)
    norm = cfg.normalised()
    return [Run(run_id(norm, s, s), cond, s, s, cfg) for s in spec.seeds]


def _function_prior_seconds(cfg: FunctionPriorRun) -> float:
    fp = cfg.function_prior
    kind, _, arg = fp.inputs.partition(":")
    m = 2 ** int(arg) if kind == "boolean" else 256
    dims = [8, *fp.widths, 1]
    return 2 * sum(a * b for a, b in zip(dims, dims[1:])) * m * fp.block / FLOP_RATE


# -- the kinds, for the planner --------------------------------------------------------------------

KINDS: dict[str, type[_MeasurementSpec]] = {"imitation": ImitationSpec, "prior": PriorSpec, "counting": CountingSpec,
                                            "function_prior": FunctionPriorSpec}
"""Spec kind -> its spec model ("train" is `sweep.spec.ExperimentSpec`)."""

MeasurementSpec = ImitationSpec | PriorSpec | CountingSpec | FunctionPriorSpec

SAMPLED_ELSEWHERE = {"counting": "deceptionlab.measure.sampled.counting_chunk", "function_prior": "deceptionlab.measure.sampled.function_prior_chunk"}
"""Kinds whose chunk work samples with code of the measure layer (the NNGP sampler of measure.counting, the
function sampler of measure.prior), which sweep may not import (layers import downwards only): the api
layer passes that work to `run_experiment(..., work=...)` (`deceptionlab.run` and every command do)."""


def expand_measurement(spec: MeasurementSpec) -> list[Run]:
    if isinstance(spec, ImitationSpec):
        return _imitation_runs(spec)
    if isinstance(spec, CountingSpec):
        return _counting_runs(spec)
    if isinstance(spec, FunctionPriorSpec):
        return _function_prior_runs(spec)
    return _prior_runs(spec)


def chunk_key(run: Run) -> tuple:
    """Runs with equal keys may share a chunk: one architecture (imitation), one condition (the others)."""
    cfg = run.config
    return ("imitation", cfg.depth, cfg.width) if isinstance(cfg, ImitationRun) else (cfg.kind, run.condition.label)


def chunk_size(run: Run) -> int:
    cfg = run.config
    if isinstance(cfg, ImitationRun):
        return 1024
    if isinstance(cfg, (CountingRun, FunctionPriorRun)):
        return 1  # one run is already a batch of chains or draws: one per chunk, so a kill loses at most one
    return max(1, DRAWS_PER_CHUNK // cfg.prior.block)


def seconds_per_run(run: Run) -> float:
    cfg = run.config
    if isinstance(cfg, CountingRun):
        return _counting_seconds(cfg)
    if isinstance(cfg, FunctionPriorRun):
        return _function_prior_seconds(cfg)
    return _imitation_seconds(cfg) if isinstance(cfg, ImitationRun) else _prior_seconds(cfg)


def measurement_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> pa.Table:
    cfg = runs[0].config
    if isinstance(cfg, ImitationRun):
        return imitation_chunk(runs, device, on_fraction)
    if cfg.kind in SAMPLED_ELSEWHERE:
        raise SpecError(f"kind {cfg.kind!r}: its chunks sample with {SAMPLED_ELSEWHERE[cfg.kind]}: run the spec with deceptionlab.run "
                        "(or the command line), which passes that work to run_experiment")
    return prior_chunk(runs, device, on_fraction)


def is_measurement(config) -> bool:
    return isinstance(config, (ImitationRun, PriorRun, CountingRun, FunctionPriorRun))


def measurement_fingerprint(spec: MeasurementSpec) -> dict:
    """What a results folder of a measurement kind pins: everything but seeds, the description and the
    values a grid may grow by (imitation's depths, widths and classes; a counting spec's sweep, and its
    P_SGD folder, which is read, not stored)."""
    d = spec.model_dump()
    d.pop("seeds"), d.pop("description")
    if isinstance(spec, ImitationSpec):
        for k in ("depths", "widths", "classes"):
            d["imitation"].pop(k)
    if isinstance(spec, CountingSpec):
        d.pop("sweep"), d["counting"].pop("results")
    return json.loads(json.dumps(d, sort_keys=True))


def blocks_for(samples: int, largest: int = 4096, smallest: int = 256) -> tuple[int, int]:
    """(block, runs) covering `samples` draws exactly: one block if it is small, else the largest block size
    in [smallest, largest] dividing it; failing that, blocks of `largest` rounding the draws up."""
    if samples <= largest:
        return samples, 1
    for b in range(largest, smallest - 1, -1):
        if samples % b == 0:
            return b, samples // b
    return largest, math.ceil(samples / largest)


