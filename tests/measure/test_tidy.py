"""The tidy frames (measure.tidy) unpack the stored columns without changing a number: the long
trajectories hold every checkpoint of every quantity, the cells frame is the stored agreement, and the
decoded decisions reproduce it cell by cell against the world's templates."""

from __future__ import annotations

import numpy as np
import pytest

import deceptionlab as dl
from deceptionlab.worlds import make_world
from tests.conftest import tiny_spec_text


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tidy")
    spec = root / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=2, steps=60))
    return dl.run(spec, root / "out")


def test_trajectories_hold_every_checkpoint_of_every_quantity(runs):
    long = dl.trajectories(runs)
    assert list(long.columns) == ["run_id", "step", "phase", "quantity", "value"]
    r = runs.iloc[0]
    mine = long[(long.run_id == r.run_id) & (long.quantity == "score_deceptive")]
    assert mine.step.tolist() == list(r.traj_step)
    assert np.allclose(mine.value, r.traj_score_deceptive)
    assert set(long.quantity) >= {"score_internal", "deploy_score_proxy", "train_accuracy", "compliance_gap", "decode_situation", "loss_policy"}
    only = dl.trajectories(runs, quantities=["compliance_gap"])
    assert set(only.quantity) == {"compliance_gap"} and len(only) == sum(len(s) for s in runs.traj_step)
    with pytest.raises(ValueError, match="no trajectory quantity nope"):
        dl.trajectories(runs, quantities=["nope"])


def test_cells_are_the_stored_agreement_with_cell_sizes(runs):
    frame = dl.cells(runs)
    world = make_world("bitworld", {"situational_awareness": runs.situational_awareness.iloc[0]})
    assert len(frame) == len(runs) * len(world.probe_cells) * 4
    r = runs.iloc[0]
    first = r.cells[0]
    got = frame[(frame.run_id == r.run_id) & (frame.cell == first["cell"])].set_index("class").agreement
    assert got.to_dict() == pytest.approx({c: first[c] for c in ("internal", "corrigible", "deceptive", "proxy")})
    sizes = frame[frame.run_id == r.run_id].drop_duplicates("cell").cell_size
    assert int(sizes.sum()) == sum(len(c.x) for c in world.probe_cells)


def test_decisions_reproduce_the_agreement(runs):
    dec = dl.decisions(runs)
    cells = dl.cells(runs)
    assert (dec.outcome == dec.code.map({1: "+1", -1: "-1"})).all()  # a sign's name
    for _, r in runs.iterrows():
        cfg = __import__("json").loads(r.config)
        world = make_world(cfg["world"]["name"], cfg["world"]["knobs"])
        mine = dec[dec.run_id == r.run_id]
        assert len(mine) == sum(len(c.x) for c in world.probe_cells)
        start = 0
        for c in world.probe_cells:
            codes = mine.code.to_numpy()[start : start + len(c.x)]
            assert (mine.cell.to_numpy()[start : start + len(c.x)] == c.name).all()
            for cls in ("internal", "deceptive"):
                want = cells[(cells.run_id == r.run_id) & (cells.cell == c.name) & (cells["class"] == cls)].agreement.item()
                assert (codes == c.templates[cls].numpy()).mean() == pytest.approx(want, abs=1e-6)
            start += len(c.x)


def test_frequencies_take_a_column_name_or_a_list(runs):
    one = dl.frequencies(runs, by="situational_awareness")
    assert one.equals(dl.frequencies(runs, by=["situational_awareness"]))
    with pytest.raises(ValueError, match="no column 'overseer'"):
        dl.frequencies(runs, by="overseer")
