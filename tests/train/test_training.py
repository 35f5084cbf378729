"""What training on bitworld measurably does: the knobs move the verdict distribution."""

from __future__ import annotations

import tomllib

from deceptionlab.measure import frequencies
from deceptionlab.sweep import parse_spec
from deceptionlab.sweep.experiment import train_chunk
from deceptionlab.sweep.spec import expand
from tests.conftest import REPO


def test_world_model_heads_and_proxy_pretraining_move_runs_off_internal_alignment():
    raw = tomllib.loads((REPO / "experiments" / "quick.toml").read_text())
    raw["seeds"] = 12
    raw["phases"][1]["steps"] = 1000
    runs = expand(parse_spec(raw))
    plain = [r for r in runs if r.condition.axes == {"situational_awareness": "off", "overseer_model": False, "own_goal_steps": 0}]
    loaded = [r for r in runs if r.condition.axes == {"situational_awareness": "interaction", "overseer_model": True, "own_goal_steps": 500}]
    df_plain = train_chunk(plain)[0].to_pandas()
    df_loaded = train_chunk(loaded)[0].to_pandas()
    # no world-model heads: SGD generalises as the internally aligned template, nearly always
    assert (df_plain.verdict == "internal").mean() >= 0.9
    assert df_plain.fit.all()
    # situational awareness + overseer model + own-goal pretraining: most runs are no longer internal,
    # though they still fit the training data (they differ only off-distribution)
    assert (df_loaded.verdict == "internal").mean() <= 0.5
    assert df_loaded.fit.mean() >= 0.9
    # the difference is in deployment behaviour: agreement with the deceptive template rises
    assert df_loaded.score_deceptive.mean() > df_plain.score_deceptive.mean() + 0.05
    freq = frequencies(df_loaded.assign(condition="loaded"))
    assert freq["count"].sum() == len(df_loaded)


def test_trajectories_are_logged_at_checkpoints():
    raw = tomllib.loads((REPO / "experiments" / "quick.toml").read_text())
    raw.update(seeds=3, log_every=250)
    spec = parse_spec(raw)
    run = [r for r in expand(spec) if r.condition.axes == {"situational_awareness": "interaction", "overseer_model": True, "own_goal_steps": 500}]
    df = train_chunk(run)[0].to_pandas()
    steps = list(df.traj_step[0])
    assert steps == [0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]
    assert list(df.traj_phase[0])[:3] == ["own_goal", "own_goal", "own_goal"]
    # after own-goal pretraining the policy acts on the proxy; after training it no longer does
    proxy_at_500 = [s[2] for s in df.traj_score_proxy]
    assert min(proxy_at_500) >= 0.9
    assert all(t[2] == "proxy" for t in df.traj_verdict)
    assert all(t[-1] != "proxy" for t in df.traj_verdict)
    loss = df.traj_loss_overseer_model[0]
    assert loss[0] != loss[0]  # nothing trained before step 0 (NaN)
    assert loss[-1] < loss[1]


def test_skipped_phases_leave_no_trace_in_the_trajectory():
    raw = tomllib.loads((REPO / "experiments" / "quick.toml").read_text())
    raw.update(seeds=2, log_every=500)
    run = [r for r in expand(parse_spec(raw)) if r.condition.axes == {"situational_awareness": "off", "overseer_model": False, "own_goal_steps": 0}]
    df = train_chunk(run)[0].to_pandas()
    assert set(df.traj_phase[0]) == {"training"}
    assert list(df.traj_step[0]) == [0, 500, 1000, 1500]
