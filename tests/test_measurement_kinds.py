"""Measurement kinds (sweep.measurements): imitation, prior volume and the ponder sweep run as specs through
`run_experiment`: stored, resumed (a second run trains nothing; a folder missing half its chunks trains only
those), and summarised from the loaded frame exactly as computed directly."""

from __future__ import annotations

import io
import os
import tomllib

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import deceptionlab as dl
from deceptionlab.cli import app
from deceptionlab.core import schema
from deceptionlab.measure import ImitationConfig, PonderConfig, compute_per_class, imitation_grid, imitation_spec, ponder_spec
from deceptionlab.measure.prior_volume import class_prior, class_prior_table, prior_spec
from deceptionlab.measure.speed import imitation_table, ponder_frames, ponder_summary
from deceptionlab.sweep import Progress, SpecError, Store, load, parse_spec, run_experiment
from deceptionlab.sweep.kinds import to_toml
from deceptionlab.worlds import Bitworld

from .conftest import REPO, cli


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
QUIET = dict(workers=1, progress=Progress(message=lambda m: None))
IMITATION = ImitationConfig(depths=(1,), widths=(1, 2, 4, 8), seeds=2, steps=150)


def _halve(out) -> int:
    """Remove every other stored chunk; returns how many runs they held."""
    parts = Store(out).parts()
    gone = 0
    for p in parts[::2]:
        gone += len(pd.read_parquet(p, columns=["run_id"]))
        p.unlink()
    return gone


def _resumes(spec, out) -> None:
    total = len(load(out))
    assert run_experiment(spec, out, **QUIET)["trained"] == 0  # a second run trains nothing
    gone = _halve(out)
    assert 0 < gone < total
    again = run_experiment(spec, out, **QUIET)
    assert (again["trained"], again["skipped"]) == (gone, total - gone)  # only the missing chunks


def test_imitation_kind_stores_resumes_and_matches_the_direct_grid(tmp_path):
    raw = imitation_spec(Bitworld(), IMITATION, name="imitation")
    spec = parse_spec(raw)
    out = tmp_path / "imitation"
    counts = run_experiment(spec, out, spec_text=to_toml(raw), chunk_size=8, **QUIET)
    assert counts["trained"] == 4 * 4 * 2  # classes x widths x seeds
    first = load(out)
    assert Store(out).kind() == "imitation" and Store(out).axes() == ["class", "depth", "width"]
    assert schema.unknown_columns(first.columns, kind="imitation") == []
    _resumes(spec, out)
    stored = imitation_table(load(out))
    direct = imitation_grid(Bitworld(), IMITATION)
    pd.testing.assert_frame_equal(stored, direct)  # the same rows, run for run
    pd.testing.assert_frame_equal(compute_per_class(stored), compute_per_class(direct))
    need = compute_per_class(stored).set_index("class")
    assert need.loc["internal", "width"] == 1 and need.loc["corrigible", "width"] > 1  # one unit cannot do the XOR
    assert tomllib.loads((out / "spec.toml").read_text()) == raw
    shown = CliRunner().invoke(app, ["show", str(out), "-f", "csv"])  # `show` summarises a measurement folder
    assert shown.exit_code == 0, shown.output
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(shown.output)), compute_per_class(direct), check_dtype=False)


def test_prior_kind_stores_resumes_and_matches_class_prior(tmp_path):
    raw = prior_spec(Bitworld(), 1200, depth=1, width=16, seed=0, fit_rows=6, block=200)
    assert (raw["seeds"], raw["prior"]["block"]) == (6, 200)
    spec = parse_spec(raw)
    out = tmp_path / "prior"
    assert run_experiment(spec, out, chunk_size=1, **QUIET)["trained"] == 6
    assert schema.unknown_columns(load(out).columns, kind="prior") == []
    _resumes(spec, out)
    table, acc = class_prior_table(load(out))
    direct, direct_acc = class_prior(Bitworld(), 1200, depth=1, width=16, seed=0, fit_rows=6, block=200)
    pd.testing.assert_frame_equal(table, direct)
    assert acc == direct_acc and acc["samples"] == 1200
    for _, g in table.groupby("source"):
        assert g.p.sum() == pytest.approx(1.0)
    assert 3 <= acc["accepted"] <= 80  # six training inputs: a few in a hundred draws fit them (measured: 12 of 600)
    other, _ = class_prior(Bitworld(), 1200, depth=1, width=16, seed=1, fit_rows=6, block=200)
    assert not other.equals(table)  # another stream, other counts


def test_ponder_is_an_ordinary_training_spec(tmp_path):
    cfg = PonderConfig(betas=(0.0, 1.0), widths=(4,), seeds=3, own_goal_steps=0, steps=200, lr=1e-2, world_model_heads=False)
    spec = parse_spec(ponder_spec(Bitworld(), cfg))
    out = tmp_path / "ponder"
    run_experiment(spec, out, chunk_size=2, **QUIET)
    frame = load(out)
    assert Store(out).kind() == "train" and schema.unknown_columns(frame.columns, tuple(Store(out).axes())) == []
    _resumes(spec, out)
    runs, cells = ponder_frames(load(out))
    assert len(runs) == 6 and len(cells) == 6 * len(Bitworld().probe_cells)
    summary = ponder_summary(runs).set_index("beta")
    assert summary.loc[1.0, "expected_exit"] < summary.loc[0.0, "expected_exit"]  # the penalty moves the exit earlier
    by_run = cells.groupby(["beta", "seed"]).expected_exit.mean()
    assert (by_run.between(1, 3)).all()  # 3 exits, counted from 1


def test_shipped_specs_parse_as_their_kinds():
    kinds = {name: dl.load_spec(REPO / "experiments" / f"{name}.toml") for name in ("speed_imitation", "speed_ponder", "prior_bitworld")}
    assert kinds["speed_imitation"].kind == "imitation" and kinds["prior_bitworld"].kind == "prior"
    ponder = kinds["speed_ponder"]
    assert ponder.model.compute_penalty is not None and {a.path for a in ponder.sweep.values()} == {"model.compute_penalty", "model.width"}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"kind": "speed"}, "kind: unknown spec kind 'speed' (kinds: train, imitation, prior)"),
        ({"imitation": {"depths": [0]}}, "imitation.depths: must be distinct whole numbers from 1 to 16"),
        ({"imitation": {"steps": 10, "colour": 1}}, "imitation.colour: unknown field"),
        ({"imitation": {"classes": ["sneaky"]}}, "imitation.classes: 'sneaky' has no reference on bitworld"),
        ({"phases": []}, "phases: unknown field"),
    ],
)
def test_bad_measurement_specs_are_one_line(change, message):
    raw = {**imitation_spec("bitworld", ImitationConfig(), knobs={}, name="x"), **change}
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_prior_spec_fields():
    raw = prior_spec(Bitworld(), 100, fit_rows=6)
    with pytest.raises(SpecError, match=r"prior\.fit_rows: must be between 1 and 256"):
        parse_spec({**raw, "prior": {**raw["prior"], "fit_rows": 999}})
    with pytest.raises(SpecError, match=r"prior\.block: Input should be greater than or equal to 1"):
        parse_spec({**raw, "prior": {**raw["prior"], "block": 0}})


def test_a_folder_refuses_a_spec_of_another_kind(tmp_path):
    raw = prior_spec(Bitworld(), 50, depth=1, width=4, name="same")
    run_experiment(parse_spec(raw), tmp_path, **QUIET)
    imitation = parse_spec(imitation_spec(Bitworld(), ImitationConfig(depths=(1,), widths=(1,), seeds=1, steps=1), name="same"))
    with pytest.raises(SpecError, match="kind: the spec is of kind 'imitation', results folder .* holds 'prior' runs"):
        run_experiment(imitation, tmp_path, **QUIET)


def test_cli_runs_a_measurement_spec_and_refuses_a_bad_one(tmp_path):
    spec = tmp_path / "prior.toml"
    spec.write_text(to_toml(prior_spec(Bitworld(), 400, depth=1, width=8, fit_rows=4, block=200, name="cli_prior")))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(spec), "-o", str(out), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "2 runs trained" in res.output and "prior|fit" in res.output and "of 400 draws fit 4 of the 256 training inputs" in res.output
    shown = CliRunner().invoke(app, ["show", str(out), "-f", "csv"])
    assert shown.exit_code == 0 and pd.read_csv(io.StringIO(shown.output)).groupby("source").p.sum().tolist() == pytest.approx([1, 1])
    again = CliRunner().invoke(app, ["prior", "--spec", str(spec), "--out", str(out)])  # the same spec: nothing to draw
    assert again.exit_code == 0 and "of 400 draws fit 4 of the 256 training inputs" in again.output
    assert len(Store(out).parts()) == 1 and (out / "class_prior.csv").is_file()
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "imitation"\nname = "b"\n[imitation]\nwidths = [0]\n')
    res = cli("run", bad, "-o", tmp_path / "never", cwd=REPO, env=ENV)  # the real command line: exit code and stderr
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "imitation.widths: must be distinct whole numbers from 1 to 4096" in res.stderr
    assert not (tmp_path / "never").exists()


def test_a_spec_built_in_code_is_written_as_toml_that_gives_the_same_runs():
    """TOML has no null: a knob at None (gridworld's max_steps) is left out and takes its default again."""
    from deceptionlab.sweep import expand
    from deceptionlab.worlds import make_world

    raw = prior_spec(make_world("gridworld", {"size": 5}), 200, depth=2, width=16)
    assert raw["world"]["knobs"]["max_steps"] is None
    text = to_toml(raw)
    assert "max_steps" not in text
    assert [r.run_id for r in expand(parse_spec(tomllib.loads(text)))] == [r.run_id for r in expand(parse_spec(raw))]
