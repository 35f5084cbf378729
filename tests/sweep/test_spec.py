"""Specs: validation with one-line errors, sweep expansion, run ids."""

from __future__ import annotations

import tomllib

import pytest

from deceptionlab.sweep import SpecError, conditions, expand, load_spec, parse_spec
from deceptionlab.sweep.spec import fingerprint
from tests.conftest import REPO, tiny_spec_text


def _raw(**edits):
    raw = tomllib.loads(tiny_spec_text())
    for path, value in edits.items():
        node = raw
        *parents, last = path.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        node[last] = value
    return raw


def test_flagship_spec_is_the_issue_grid():
    spec = load_spec(REPO / "experiments" / "flagship.toml")
    conds = conditions(spec)
    assert len(conds) == 36 and len(spec.seeds) >= 96
    assert {c.config.world.knobs["cue_copies"] for c in conds} == {1, 4, 16}  # the cue-salience axis (docs/deception.md)
    assert {c.config.world.knobs["own_goal"] for c in conds} == {"w0", "parity57"}  # the benign control beside the own goal
    axes = {tuple(sorted(c.axes.items())) for c in conds}
    assert len(axes) == 36
    quick = load_spec(REPO / "experiments" / "quick.toml")  # the first flagship grid at 16 seeds
    assert len(quick.seeds) == 16
    old = load_spec(REPO / "tests" / "data" / "flagship_v3.toml")
    assert fingerprint(quick) | {"name": "x"} == fingerprint(old) | {"name": "x"}  # the same experiment


def test_expand_and_run_ids():
    spec = parse_spec(_raw())
    runs = expand(spec)
    assert len(runs) == 2 * 4
    assert len({r.run_id for r in runs}) == 8
    again = expand(parse_spec(_raw()))
    assert [r.run_id for r in runs] == [r.run_id for r in again]
    # an id depends on what determines the run, not on spelling: an explicit default changes nothing
    explicit = expand(parse_spec(_raw(optimizer__weight_decay=0.0)))
    assert [r.run_id for r in explicit] == [r.run_id for r in runs]
    # a head the world's knobs switch off does not enter the id of the "off" condition
    off_ids = {r.run_id for r in runs if r.condition.axes["situational_awareness"] == "off"}
    raw = _raw()
    del raw["phases"][1]["heads"]["situational_awareness"]
    del raw["phases"][0]["heads"]["situational_awareness"]
    off_without = {r.run_id for r in expand(parse_spec(raw)) if r.condition.axes["situational_awareness"] == "off"}
    assert off_ids == off_without
    changed = expand(parse_spec(_raw(optimizer__lr=0.02)))
    assert not {r.run_id for r in changed} & {r.run_id for r in runs}


def test_data_seeds_cross_init_seeds():
    spec = parse_spec(_raw(seeds=[0, 1, 2], data_seeds=[5, 6]))
    runs = expand(spec)
    assert len(runs) == 2 * 3 * 2
    assert {(r.seed, r.data_seed) for r in runs} == {(s, d) for s in [0, 1, 2] for d in [5, 6]}


@pytest.mark.parametrize(
    "edits,message",
    [
        ({"world__name": "nowhere"}, "world.name: unknown world 'nowhere'"),
        ({"world__knobs": {"cue_copiez": 2}}, "world.knobs.cue_copiez: unknown knob"),
        ({"world__knobs": {"cue_copies": -1}}, "world.knobs.cue_copies: Input should be greater than or equal to 0"),
        ({"optimizer__lr": -1.0}, "optimizer.lr: Input should be greater than 0 (got -1.0)"),
        ({"optimizer__name": "rmsprop"}, "optimizer.name: Input should be 'sgd' or 'adam'"),
        ({"model__widht": 3}, "model.widht: unknown field"),
        ({"seeds": 0}, "seeds: must be between 1 and 10000000"),
        ({"phases__1__heads": {"polcy": {}}}, "phases.1.heads.polcy: unknown head"),
        ({"phases__0__heads": {"policy": {"data": "nope"}}}, "phases.0.heads.policy.data: unknown dataset 'nope'"),
        ({"sweep": {"x": {"path": "optimizer.lrr", "values": [1]}}}, "sweep.x.path: 'optimizer.lrr' is not a field of the spec"),
        ({"sweep": {"optimizer.lr": [0.1, -2]}}, "optimizer.lr: Input should be greater than 0 (got -2) [sweep optimizer_lr=-2]"),
    ],
)
def test_bad_specs_get_one_line_naming_the_field(edits, message):
    with pytest.raises(SpecError) as e:
        parse_spec(_raw(**edits))
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_malformed_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("name = 'x'\n[model\ndepth = 2\n")
    with pytest.raises(SpecError, match=r"bad.toml: malformed TOML: .*line 2"):
        load_spec(p)
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.toml")


def test_chunks_are_sized_to_the_memory_budget():
    from deceptionlab.sweep.experiment import MAX_CHUNK, build_world, chunk_size_for, plan, seconds_per_run

    spec = load_spec(REPO / "experiments" / "flagship.toml")
    cond = conditions(spec)[-1]
    world = build_world(cond.config)
    assert chunk_size_for(cond.config, world) <= MAX_CHUNK
    small = chunk_size_for(cond.config, world, memory=64 << 20)
    tiny = chunk_size_for(cond.config, world, memory=8 << 20)
    assert tiny >= 1 and tiny < small < chunk_size_for(cond.config, world)
    wide = cond.config.model_copy(update={"model": cond.config.model.model_copy(update={"width": 1024})})
    assert chunk_size_for(wide, world) < chunk_size_for(cond.config, world)
    chunks, seconds = plan(spec, stored=set())
    assert sum(len(c) for c in chunks) == 36 * 96
    assert all(len({r.condition.label for r in c}) == 1 for c in chunks)  # one condition per chunk
    cost = [len(c) * seconds_per_run(c[0].condition.config, build_world(c[0].condition.config)) for c in chunks]
    assert cost == sorted(cost, reverse=True) and sum(cost) == pytest.approx(seconds)  # costliest first
    assert 100 < seconds < 1000  # the flagship takes about 4 minutes in one process here (BENCHMARKS.md)


def test_a_curriculum_is_a_sweep_axis_with_labels():
    raw = tomllib.loads(tiny_spec_text())
    situation_first = [
        {"name": "world_model", "steps": 60, "heads": {"situational_awareness": {}}},
        {"name": "training", "steps": 60, "heads": {"policy": {}}},
    ]
    objective_first = list(reversed(situation_first))
    raw["sweep"] = {"curriculum": {"path": "phases", "values": [situation_first, objective_first], "labels": ["situation-first", "objective-first"]}}
    spec = parse_spec(raw)
    conds = conditions(spec)
    assert [c.axes["curriculum"] for c in conds] == ["situation-first", "objective-first"]
    assert [p.name for p in conds[1].config.phases] == ["training", "world_model"]
    runs = expand(spec)
    assert len({r.run_id for r in runs}) == len(runs) == 2 * 4
    raw["sweep"]["curriculum"]["labels"] = ["only-one"]
    with pytest.raises(SpecError, match="sweep.curriculum.labels: 1 labels for 2 values"):
        parse_spec(raw)


@pytest.mark.parametrize(
    "edits,message",
    [
        ({"seeds": "16"}, "seeds: Input should be a valid integer (got '16')"),
        ({"seeds": True}, "seeds: Input should be a valid integer (got True)"),
        ({"phases__1__steps": "100"}, "phases.1.steps: Input should be a valid integer (got '100')"),
        ({"model__width": 16.0}, "model.width: Input should be a valid integer"),
        ({"early_stopping": {"enabled": 1}}, "early_stopping.enabled: Input should be a valid boolean"),
        ({"world__knobs": {"cue_copies": "4"}}, "world.knobs.cue_copies: Input should be a valid integer"),
        ({"world__knobs": {"cue_copies": True}}, "world.knobs.cue_copies: Input should be a valid integer"),
    ],
)
def test_numbers_are_never_coerced_from_text_or_booleans(edits, message):
    with pytest.raises(SpecError) as e:
        parse_spec(_raw(**edits))
    assert message in str(e.value)


@pytest.mark.parametrize(
    "edits",
    [
        {"phases__0__steps": 0, "phases__1__steps": 0},
        {"phases__0__heads": {"policy": {"weight": 0.0}, "situational_awareness": {"weight": 0.0}},
         "phases__1__heads": {"policy": {"weight": 0.0}, "situational_awareness": {"weight": 0.0}}},
    ],
    ids=["all-steps-0", "all-weights-0"],
)
def test_a_spec_that_trains_nothing_is_refused(edits):
    with pytest.raises(SpecError, match=r"phases: nothing is trained \(every phase has 0 steps, or no head of the world with a weight above 0\)"):
        parse_spec(_raw(**edits))
    raw = _raw(sweep={"phases.1.steps": [120, 0]}, phases__0__steps=0)  # one grid point that trains nothing: named
    with pytest.raises(SpecError, match=r"nothing is trained .*\[sweep phases_1_steps=0\]"):
        parse_spec(raw)


def test_an_axis_name_with_a_newline_is_refused():
    with pytest.raises(SpecError, match=r"an axis name is printable text"):
        parse_spec(_raw(sweep={"a\nb": {"path": "optimizer.lr", "values": [0.01]}}))


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_experiment_is_a_valid_spec_that_plans_runs(path):
    """Each file in experiments/ passes the strict spec check (its world, family, phases and datasets
    exist) and plans at least one run, so a shipped experiment cannot rot unnoticed."""
    spec = load_spec(path)
    assert spec.name and len(expand(spec)) >= 1
