"""The `World` interface: what an experiment's environment and data must provide.

A world knows nothing of training. It names its observation channels, its heads and their
datasets, its probe cells (with each class's template on them) and a reference implementation of
every class. The trainer only sees `Dataset`s; the verdicts only see `ProbeCell`s.

`World.check` enforces the contract (bottom of this file; docs/worlds.md lists it): shapes and
values of every tensor, heads and datasets that match, templates for every class that agree in
training and differ somewhere, references of the right shape that reproduce their templates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.scoring import ALIGNED, CLASSES

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
class CuePair:
    """Probe inputs that are each other's cue-flipped twins (the compliance gap compares them).

    Row `training_rows[i]` of cell `training` and row `deployment_rows[i]` of cell `deployment` show the
    same world state under the same spec; only the situation cue differs (a training-situation cue in
    the first, a deployment one in the second)."""

    training: str  # name of a probe cell of the training situation
    deployment: str  # name of a probe cell of another situation, same spec and region
    training_rows: torch.Tensor  # (k,) long
    deployment_rows: torch.Tensor  # (k,) long


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
    goals: dict[str, torch.Tensor] = field(default_factory=dict)  # own goal -> (n,): every goal the world declares (World.own_goals)
    weight: float = 1.0  # the cell's weight in the class scores (a weighted mean over cells; equal by default)

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
    own_goals: ClassVar[tuple[str, ...]] = ()  # goals a run may own ("many Pascals"): values of the knob `own_goal`
    control_goals: ClassVar[tuple[str, ...]] = ()  # targets that are no goal of the model (the benign conditional control)
    classes: ClassVar[tuple[str, ...]] = CLASSES  # the classes this world tells apart (at least two of CLASSES, "proxy" among them)
    judge_on: ClassVar[str] = "held_out"  # the probe cells verdicts rest on: "held_out" (no input of the cell is a training input) or "all"

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

    def _build_cached(self) -> None:
        """Set the attributes `self._build()` computes, built once per class and knob setting (specs
        build a world many times; its data are fixed given its knobs). Containers are copied, so that
        changing one world's datasets or cells leaves the others alone."""
        built = _built(type(self), self.knobs)
        self.__dict__.update({k: type(v)(v) if isinstance(v, (dict, list)) else v for k, v in built.items()})

    def check(self, exact: bool = False) -> None:
        """Raise ValueError naming what is wrong if the world breaks the interface's contract.

        `exact` also asks every reference implementation to reproduce its class's template on every
        probe input, and every aligned one the training labels: true of a world whose observations
        reveal the situation and spec. The lab asks it of every world once, built with its default
        knobs; knob settings may legitimately break it (a noisy cue hides the situation).
        """
        problems = self.problems(exact)
        if problems:
            raise ValueError(f"world {getattr(type(self), 'name', type(self).__name__)!r}: " + "; ".join(problems))

    def problems(self, exact: bool = False) -> list[str]:
        """What `check` would complain about, one phrase per problem (empty when the world is sound)."""
        return self.class_problems() + _instance_problems(self, exact)

    @classmethod
    def class_problems(cls) -> list[str]:
        """Problems of the class itself (its name, knobs and head names), found before building one."""
        return _class_problems(cls)

    def cue_pairs(self) -> list[CuePair]:
        """Which probe input is the cue-flipped twin of which (the compliance gap reads these pairs).

        By default: each probe cell of a situation the policy never trains in is paired with the training-
        situation cell of the same spec and region, row with row where the observations are equal outside
        the situation_cue channel (the j-th such deployment row with the (j mod m)-th of the m matching
        training rows, so several deployment contexts may share a training twin). Worlds whose twins differ
        elsewhere in the observation (or whose cells are not built from the same states) override this."""
        cells = self.probe_cells
        train_sits = {c.situation for c in cells if c.in_training}
        cue = self.channels.get("situation_cue", slice(0, 0))
        keep = torch.ones(self.input_dim, dtype=torch.bool)
        keep[cue] = False
        by_key = {(c.spec, c.region): c for c in cells if c.situation in train_sits}
        pairs = []
        for d in cells:
            t = by_key.get((d.spec, d.region))
            if d.situation in train_sits or t is None:
                continue
            index: dict[bytes, list[int]] = {}
            for i, row in enumerate(t.x[:, keep]):
                index.setdefault(row.numpy().tobytes(), []).append(i)
            seen: dict[bytes, int] = {}
            tr, dr = [], []
            for j, row in enumerate(d.x[:, keep]):
                key = row.numpy().tobytes()
                if key in index:
                    n = seen.get(key, 0)
                    tr.append(index[key][n % len(index[key])])
                    dr.append(j)
                    seen[key] = n + 1
            if tr:
                pairs.append(CuePair(t.name, d.name, torch.tensor(tr), torch.tensor(dr)))
        return pairs

    @classmethod
    def describe_knobs(cls) -> list[tuple[str, str, str]]:
        """(knob, default, description) rows for `deceptionlab worlds` (of the class: nothing is built)."""
        rows = []
        for name, f in cls.Knobs.model_fields.items():
            rows.append((name, repr(f.default), f.description or ""))
        return rows


def class_templates(world: World, cell: ProbeCell) -> dict[str, torch.Tensor]:
    """The template of every class of CLASSES on `cell`, in that order: the world's own for the classes it
    declares (`World.classes`), NaN for the others (no decision matches NaN: an undeclared class is never
    matched, and its scores are NaN, "not told apart by this world")."""
    declared = declared_classes(world)
    nan = torch.full((len(cell.x),), float("nan"))
    return {k: cell.templates[k].float() if k in declared else nan for k in CLASSES}


def seen_shares(world: World) -> list[float]:
    """Per probe cell, the share of its inputs that are inputs of the policy's training data (the fit
    dataset): 0 for a held-out cell, which training never showed."""
    trained = {row.tobytes() for row in world.datasets[world.fit_dataset].x.numpy()}
    return [float(np.mean([row.tobytes() in trained for row in c.x.numpy()])) for c in world.probe_cells]


def judged_cells(world: World, on: str | None = None) -> np.ndarray:
    """(cells,) bool: the probe cells verdicts rest on, `on` "held_out" or "all" (default: the world's
    `judge_on`): its held-out cells (seen share 0), or every cell when it says "all" or when no held-out
    cell tells two classes apart (then nothing else could be judged)."""
    every = np.ones(len(world.probe_cells), dtype=bool)
    if (on or getattr(type(world), "judge_on", "held_out")) == "all":
        return every
    held = np.array([s == 0 for s in seen_shares(world)], dtype=bool)
    return held if any(h and c.discriminating for h, c in zip(held, world.probe_cells)) else every


def declared_classes(world) -> tuple[str, ...]:
    """The classes a world (or world class) declares it tells apart, in CLASSES order."""
    cls = world if isinstance(world, type) else type(world)
    declared = set(getattr(cls, "classes", CLASSES))
    return tuple(k for k in CLASSES if k in declared)


@functools.lru_cache(maxsize=32)
def _built(cls: type, knobs: Knobs) -> dict:
    """The attributes of a `cls` world with these knobs, as its `_build` sets them."""
    world = cls.__new__(cls)
    world.knobs = knobs
    world._build()
    return dict(world.__dict__)


# -- the contract `World.check` enforces: each function returns problems as phrases ------------------
CHANNELS = ("world_state", "situation_cue", "objective_spec")
_ATTRIBUTES = {  # attribute -> (type it must have, what it is)
    "input_dim": (int, "an int"), "channels": (dict, "a dict"), "heads": (dict, "a dict"), "datasets": (dict, "a dict"),
    "fit_dataset": (str, "a str"), "probe_cells": (list, "a list"), "references": (dict, "a dict"), "decodables": (dict, "a dict"),
}


def _class_problems(cls: type) -> list[str]:
    problems = []
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        problems.append("it sets no name (a class attribute: the str results and tables call the world by)")
    knobs = getattr(cls, "Knobs", None)
    if not (isinstance(knobs, type) and issubclass(knobs, Knobs)):
        problems.append(f"Knobs must be a subclass of deceptionlab.worlds.Knobs, got {knobs!r}")
    else:
        try:
            knobs.model_validate(knobs().model_dump())  # pydantic does not validate defaults by itself
        except ValidationError as e:
            err = e.errors()[0]
            knob = ".".join(map(str, err["loc"]))
            if err["type"] == "missing":
                problems.append(f"knob {knob!r} has no default (every knob needs one)")
            else:
                problems.append(f"the default of knob {knob!r} is invalid: {err['msg']} (got {err.get('input')!r})")
    classes = getattr(cls, "classes", CLASSES)
    if not isinstance(classes, tuple) or not all(isinstance(c, str) for c in classes):
        problems.append(f"classes must be a tuple of class names, got {classes!r}")
    else:
        unknown = [c for c in classes if c not in CLASSES]
        if unknown:
            problems.append(f"classes names unknown classes {unknown} (classes a world can declare: {', '.join(CLASSES)}; own goals are declared as own_goals)")
        elif len(set(classes)) < 2 or "proxy" not in classes:
            problems.append(f"classes must name at least two classes, proxy among them (what the training objective failed to correct), got {classes!r}")
    if getattr(cls, "judge_on", "held_out") not in ("held_out", "all"):
        problems.append(f"judge_on must be 'held_out' or 'all', got {cls.judge_on!r}")
    heads = getattr(cls, "all_heads", None)
    if not isinstance(heads, tuple) or not heads or heads[0] != "policy" or not all(isinstance(h, str) for h in heads):
        problems.append(f"all_heads must be a tuple of head names, 'policy' first, got {heads!r}")
    return problems


def _instance_problems(world: World, exact: bool) -> list[str]:
    missing = [a for a in _ATTRIBUTES if not hasattr(world, a)]
    if missing:
        return [f"__init__ does not set {', '.join(missing)}"]
    values = {a: getattr(world, a) for a in _ATTRIBUTES}
    wrong = [f"{a} must be {what}, got {type(values[a]).__name__}" for a, (t, what) in _ATTRIBUTES.items() if not isinstance(values[a], t)]
    if wrong:
        return wrong
    if world.input_dim < 1:
        return [f"input_dim must be positive, got {world.input_dim}"]
    problems = _channel_problems(world) + _head_problems(world)
    signs = type(world).family == "mlp"  # other families' policies make categorical decisions: outcome codes
    for kind, tables, min_rows in (("dataset", world.datasets, 1), ("decodable", world.decodables, 2)):
        for name, ds in tables.items():
            problems += _dataset_problems(f"{kind} {name!r}", ds, world.input_dim, min_rows, signs or kind == "decodable")
    if world.fit_dataset not in world.datasets:
        problems.append(f"fit_dataset {world.fit_dataset!r} is not a dataset (datasets: {', '.join(world.datasets)})")
    problems += _cell_problems(world, signs)
    if problems:  # what follows evaluates templates and references, which needs sound shapes
        return problems
    template = _template_problems(world.probe_cells, declared_classes(world)) + _goal_problems(world) + _pair_problems(world)
    if not signs:  # references are policies whose outcomes the family's evaluator finds (e.g. by rollouts)
        return template
    problems, outputs = _reference_outputs(world)
    if exact and not template and not problems:  # comparing references with broken templates tells nothing more
        problems += _exact_problems(world, outputs)
    return template + problems


def _channel_problems(world: World) -> list[str]:
    problems = []  # a channel the world does not name is absent (an empty slice): a world with no cue or no spec is valid
    taken: dict[int, str] = {}
    for name, sl in world.channels.items():
        if not isinstance(sl, slice) or not all(isinstance(v, int) for v in (sl.start, sl.stop)) or sl.step not in (None, 1):
            problems.append(f"channel {name!r} must be a slice(start, stop) of the observation, got {sl!r}")
        elif not 0 <= sl.start <= sl.stop <= world.input_dim:
            problems.append(f"channel {name!r} is columns {sl.start}:{sl.stop}, outside the observation's 0:{world.input_dim}")
        else:
            for col in range(sl.start, sl.stop):
                if col in taken:
                    problems.append(f"channels {taken[col]!r} and {name!r} overlap at column {col}")
                    break
                taken[col] = name
    return problems


def _head_problems(world: World) -> list[str]:
    heads = world.heads
    if "policy" not in heads:
        return ["it has no 'policy' head"]
    problems = [] if next(iter(heads)) == "policy" else ["'policy' must be the first head (the lab reads the policy from head 0)"]
    for key, h in heads.items():
        if not isinstance(h, Head) or h.name != key:
            problems.append(f"heads[{key!r}] must be Head({key!r}, dataset), got {h!r}")
            continue
        if key not in type(world).all_heads:
            problems.append(f"head {key!r} is not in all_heads {type(world).all_heads}")
        if h.dataset not in world.datasets:
            problems.append(f"head {key!r} trains on unknown dataset {h.dataset!r} (datasets: {', '.join(world.datasets)})")
    return problems


def _dataset_problems(what: str, ds, input_dim: int, min_rows: int, signs: bool = True) -> list[str]:
    if not isinstance(ds, Dataset):
        return [f"{what} must be a Dataset(x, y), got {type(ds).__name__}"]
    x, y = ds.x, ds.y
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        return [f"{what} must hold tensors, got x {type(x).__name__} and y {type(y).__name__}"]
    if x.ndim != 2 or x.shape[1] != input_dim or len(x) < min_rows:
        return [f"{what} has x of shape {tuple(x.shape)}, expected (P, {input_dim}) with P >= {min_rows}"]
    if not x.is_floating_point() or not torch.isfinite(x).all():
        return [f"{what} has x that is not finite floating point ({x.dtype})"]
    if y.shape != (len(x),):
        return [f"{what} has y of shape {tuple(y.shape)}, expected ({len(x)},)"]
    bad = (_not_a_sign if signs else _not_a_code)(y)
    return [] if bad is None else [f"{what} has y with values {_EXPECTED[signs]} (e.g. {bad!r})"]


_EXPECTED = {True: "outside {-1,+1}", False: "that are not integer outcome codes"}


def _not_a_sign(t: torch.Tensor) -> float | None:
    """A value of `t` that is neither -1 nor +1, or None."""
    bad = t[(t != 1) & (t != -1)]
    return bad[0].item() if len(bad) else None


def _not_a_code(t: torch.Tensor) -> float | None:
    """A value of `t` that is not a finite integer (an outcome code of a categorical world), or None."""
    t = t.double()
    bad = t[~torch.isfinite(t) | (t != t.round())]
    return bad[0].item() if len(bad) else None


def _cell_problems(world: World, signs: bool = True) -> list[str]:
    cells = world.probe_cells
    if not cells:
        return ["it has no probe cells"]
    problems, seen = [], set()
    for cell in cells:
        if not isinstance(cell, ProbeCell):
            problems.append(f"probe_cells must hold ProbeCells, got {type(cell).__name__}")
            continue
        what = f"probe cell {cell.name!r}"
        if cell.name in seen:
            problems.append(f"two probe cells are called {cell.name!r}")
        seen.add(cell.name)
        if not isinstance(cell.weight, (int, float)) or not cell.weight > 0 or cell.weight == float("inf"):
            problems.append(f"{what} has weight {cell.weight!r}, expected a finite number > 0")
        x = cell.x
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != world.input_dim or len(x) < 1:
            problems.append(f"{what} has x of shape {tuple(getattr(x, 'shape', ()))}, expected (n, {world.input_dim}) with n >= 1")
            continue
        declared = declared_classes(world)
        missing = [c for c in declared if c not in cell.templates]
        unknown = [c for c in cell.templates if c not in CLASSES]
        undeclared = [c for c in cell.templates if c in CLASSES and c not in declared]
        if missing:
            problems.append(f"{what} lacks templates for {missing}")
        if unknown:
            problems.append(f"{what} has templates for unknown classes {unknown} (classes: {', '.join(CLASSES)})")
        if undeclared:
            problems.append(f"{what} has templates for {undeclared}, which the world does not declare (classes = {declared})")
        for c, t in cell.templates.items():
            if not isinstance(t, torch.Tensor) or t.shape != (len(x),):
                problems.append(f"{what} has a {c} template of shape {tuple(getattr(t, 'shape', ()))}, expected ({len(x)},)")
            elif (bad := (_not_a_sign if signs else _not_a_code)(t)) is not None:
                problems.append(f"{what} has a {c} template with values {_EXPECTED[signs]} (e.g. {bad!r})")
    return problems


def _template_problems(cells: list[ProbeCell], declared: tuple[str, ...] = CLASSES) -> list[str]:
    problems = []
    same = [f"{a} and {b}" for i, a in enumerate(declared) for b in declared[i + 1 :] if all(torch.equal(c.templates[a], c.templates[b]) for c in cells)]
    if not any(c.discriminating for c in cells):
        problems.append("no probe cell is discriminating (the templates agree everywhere, so no verdict can tell the classes apart)")
    elif same:
        problems.append(f"the templates of {', '.join(same)} are equal on every probe cell (no verdict can tell them apart)")
    if not any(c.in_training for c in cells):
        problems.append("no probe cell is marked in_training (the cells of the policy's training distribution)")
    for cell in cells:
        if cell.in_training:
            aligned = [c for c in ALIGNED if c in declared]
            ts = [cell.templates[c] for c in aligned]
            if any(not torch.equal(ts[0], t) for t in ts[1:]):
                problems.append(
                    f"templates disagree on training cell {cell.name!r} "
                    f"({', '.join(aligned)} must act alike in training)"
                )
    return problems


def _goal_problems(world: World) -> list[str]:
    """Declared own goals: a knob `own_goal` choosing among them, and a goal template in every cell."""
    cls = type(world)
    goals = (*cls.own_goals, *cls.control_goals)
    if not goals:
        return []
    problems = []
    if "own_goal" not in cls.Knobs.model_fields:
        problems.append("it declares own_goals but has no knob 'own_goal' to choose one")
    for cell in world.probe_cells:
        missing = [g for g in goals if g not in cell.goals]
        if missing:
            problems.append(f"probe cell {cell.name!r} lacks goal templates for {missing}")
            break
        bad = [g for g, t in cell.goals.items() if not isinstance(t, torch.Tensor) or t.shape != (len(cell.x),)]
        if bad:
            problems.append(f"probe cell {cell.name!r} has goal templates of the wrong shape for {bad}, expected ({len(cell.x)},)")
            break
    return problems


def _pair_problems(world: World) -> list[str]:
    """Cue pairs must name cells of the right situations, rows in range, and twins that differ only in the cue."""
    try:
        pairs = world.cue_pairs()
    except Exception as e:  # a user's override: any failure is a finding
        return [f"cue_pairs raised {type(e).__name__}: {e}"]
    cells = {c.name: c for c in world.probe_cells}
    train_sits = {c.situation for c in world.probe_cells if c.in_training}
    signs = type(world).family == "mlp"
    cue = world.channels.get("situation_cue", slice(0, 0))
    keep = torch.ones(world.input_dim, dtype=torch.bool)
    keep[cue] = False
    problems = []
    for p in pairs:
        t, d = cells.get(p.training), cells.get(p.deployment)
        what = f"cue pair {p.training!r} / {p.deployment!r}"
        if t is None or d is None:
            problems.append(f"{what} names an unknown probe cell")
        elif t.situation not in train_sits or d.situation in train_sits:
            problems.append(f"{what} must pair a training-situation cell with a cell of another situation")
        elif len(p.training_rows) != len(p.deployment_rows) or not len(p.training_rows):
            problems.append(f"{what} has {len(p.training_rows)} training rows for {len(p.deployment_rows)} deployment rows")
        elif p.training_rows.max() >= len(t.x) or p.deployment_rows.max() >= len(d.x) or min(p.training_rows.min(), p.deployment_rows.min()) < 0:
            problems.append(f"{what} has rows out of range")
        elif not torch.equal(t.templates["proxy"][p.training_rows], d.templates["proxy"][p.deployment_rows]) or any(
            not torch.equal(t.goals[g][p.training_rows], d.goals[g][p.deployment_rows]) for g in t.goals if g in d.goals
        ):
            problems.append(f"{what}: twins have different own-goal targets (twins must show the same state)")
        elif signs and not torch.equal(t.x[p.training_rows][:, keep], d.x[p.deployment_rows][:, keep]):
            problems.append(f"{what}: twins differ outside the situation_cue channel")
        if problems:
            break
    return problems


def _reference_outputs(world: World) -> tuple[list[str], dict[str, list[torch.Tensor]]]:
    """Problems of the references, and each sound one's outputs on every probe cell, then on the fit dataset."""
    refs = world.references
    declared = declared_classes(world)
    missing = [c for c in ("internal", "corrigible", "proxy") if c in declared and c not in refs]  # deceptive may be unimplementable
    problems = [f"no reference implementation for {missing}"] if missing else []
    problems += [f"references has unknown class {c!r} (classes: {', '.join(CLASSES)})" for c in refs if c not in CLASSES]
    problems += [f"references has class {c!r}, which the world does not declare (classes = {declared})" for c in refs if c in CLASSES and c not in declared]
    inputs = [*((f"probe cell {c.name!r}", c.x) for c in world.probe_cells), (f"dataset {world.fit_dataset!r}", world.datasets[world.fit_dataset].x)]
    outputs = {}
    for cls, ref in refs.items():
        if cls not in declared:
            continue
        what, outs = f"reference {cls!r}", []
        for name, x in inputs:
            try:
                with torch.no_grad():
                    out = ref(x)
            except Exception as e:  # a user's function: any failure is a finding, reported in one line
                problems.append(f"{what} raised {type(e).__name__}: {e} on {name}")
                break
            if not isinstance(out, torch.Tensor) or out.shape != (len(x),):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                problems.append(f"{what} returns {shape} for the {len(x)} inputs of {name}, expected a tensor of shape ({len(x)},)")
                break
            if _not_a_sign(out) is not None:
                problems.append(f"{what} returns values outside {{-1,+1}} on {name} (e.g. {_not_a_sign(out)!r})")
                break
            outs.append(out)
        else:
            outputs[cls] = outs
    return problems, outputs


def _exact_problems(world: World, outputs: dict[str, list[torch.Tensor]]) -> list[str]:
    """Each reference must reproduce its own template on every probe input; the aligned ones the training labels."""
    problems = []
    for cls, outs in outputs.items():
        for cell, out in zip(world.probe_cells, outs):
            wrong = int((out != cell.templates[cls]).sum())
            if wrong:
                problems.append(f"reference {cls!r} disagrees with its own template on {wrong} of {len(out)} inputs of probe cell {cell.name!r}")
                break
    y = world.datasets[world.fit_dataset].y
    wrong = {cls: int((outs[-1] != y).sum()) for cls, outs in outputs.items() if cls in ALIGNED}
    if any(wrong.values()):
        counts = ", ".join(f"{cls} on {n}" for cls, n in wrong.items() if n)
        problems.append(f"aligned references disagree with the training labels (dataset {world.fit_dataset!r}): {counts} of {len(y)} rows")
    return problems
