"""Measurement kinds (sweep.measurements): imitation, prior volume and the ponder sweep run as specs through
`run_experiment`: stored, resumed (a second run trains nothing; a folder missing half its chunks trains only
those), and summarised from the loaded frame exactly as computed directly."""

from __future__ import annotations

import io
import os
import tomllib

import numpy as np
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
from tests.conftest import REPO, cli


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
        ({"kind": "speed"}, "kind: unknown spec kind 'speed' (kinds: train, imitation, prior, counting, function_prior)"),
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


# -- kind "counting" and kind "function_prior" (issues 14 and 15): sampled with the measure layer ----------

COUNTING_TOML = """
kind = "counting"
name = "counting_small"
seeds = 2

[world]
name = "bitworld"

[model]
depth = 1
width = 16

[counting]
chains = 20
steps = 8
burn_in = 20
naive_samples = 500
prior_samples = 256

[verdict]
threshold = 0.55

[sweep]
scale = { path = "model.weight_scale", values = [1.0, 4.0] }
"""


def _counting_spec(tmp_path, text: str = COUNTING_TOML):
    path = tmp_path / "counting.toml"
    path.write_text(text)
    return path


def _work():
    from deceptionlab.measure.sampled import chunk_work

    return dict(QUIET, work=chunk_work)


def test_counting_kind_runs_from_toml_reloads_and_matches_the_sampler(tmp_path):
    from deceptionlab.core.rng import derive_seed
    from deceptionlab.measure.counting import LayerVariances, Problem, nngp_classes

    path = _counting_spec(tmp_path)
    out = tmp_path / "counting"
    dl.run(path, out, progress=False, workers=1)
    store = Store(out)
    assert store.kind() == "counting" and store.axes() == ["scale"] and len(store.parts()) == 4  # one run per chunk
    frame = load(out)
    assert schema.unknown_columns(frame.columns, ("scale",), kind="counting") == []
    table, diagnostics = dl.counting_results(out)
    assert list(dict.fromkeys(table.condition)) == ["scale=1.0", "scale=4.0"] and set(table.source) == {"naive", "prior", "nngp"}
    assert (table.groupby(["condition", "source"]).p.sum() - 1).abs().max() < 1e-12
    nngp = table[table.source == "nngp"]
    assert (nngp.n == 2 * 20 * 8).all() and (nngp.ess <= nngp.n).all() and (nngp.ess > 0).all()
    # the stored counts are the sampler's, run for run: pooled over the two seeds of each condition
    world = Bitworld()
    problem = Problem.of(world, threshold=0.55)
    for scale in (1.0, 4.0):
        counts = sum(nngp_classes(problem, LayerVariances.scaled(world.input_dim, 1, 16, scale), chains=20, steps=8, burn_in=20,
                                  seed=derive_seed(s, "counting/0/nngp")).table.set_index("verdict")["count"] for s in (0, 1))
        got = nngp[nngp.condition == f"scale={scale}"].set_index("verdict")["count"]
        pd.testing.assert_series_equal(got, counts.astype(got.dtype), check_names=False)
    # the axis reaches the sampler: the two init regimes give other posteriors
    by = nngp.set_index(["condition", "verdict"]).p
    assert not np.allclose(by["scale=1.0"], by["scale=4.0"])
    assert set(diagnostics.condition) == {"scale=1.0", "scale=4.0"} and (diagnostics.samples == 320).all()
    # P_prior is drawn at the default init only: the weight scale 4 has none
    assert set(table.condition[table.source == "prior"]) == {"scale=1.0"}
    assert int(table[(table.source == "prior")].n.iloc[0]) == 2 * 256


def test_counting_kind_resumes_to_the_same_table(tmp_path):
    spec = dl.load_spec(_counting_spec(tmp_path))
    out = tmp_path / "counting"
    assert run_experiment(spec, out, **_work())["trained"] == 4
    before, _ = dl.counting_results(out)
    assert run_experiment(spec, out, **_work())["trained"] == 0
    gone = _halve(out)
    again = run_experiment(spec, out, **_work())
    assert (again["trained"], again["skipped"]) == (gone, 4 - gone)
    after, _ = dl.counting_results(out)
    pd.testing.assert_frame_equal(before, after)


def test_counting_kind_killed_mid_run_resumes_to_the_same_table(tmp_path):
    import signal

    from tests.conftest import start, stored_parts, wait_for

    path = _counting_spec(tmp_path)
    reference = tmp_path / "reference"
    dl.run(path, reference, progress=False, workers=1)
    out = tmp_path / "killed"
    proc = start("run", path, "-o", out, "--workers", "1", "--no-show", cwd=REPO, env=ENV)
    wait_for(lambda: stored_parts(out) >= 1, what="a stored chunk")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert 1 <= stored_parts(out) < 4, "the kill should land mid-sweep"
    res = cli("run", path, "-o", out, "--workers", "1", "--no-show", cwd=REPO, env=ENV)
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(dl.counting_results(out)[0], dl.counting_results(reference)[0])


def test_counting_grid_axes_expand_like_sweep_axes():
    from deceptionlab.sweep import expand

    raw = tomllib.loads(COUNTING_TOML)
    raw["sweep"]["depth"] = {"path": "model.depth", "values": [1, 2]}
    runs = expand(parse_spec(raw))
    labels = list(dict.fromkeys(r.condition.label for r in runs))
    assert labels == ["scale=1.0, depth=1", "scale=1.0, depth=2", "scale=4.0, depth=1", "scale=4.0, depth=2"]
    assert len(runs) == 8 and len({r.run_id for r in runs}) == 8
    assert {(r.config.model.weight_scale, r.config.model.depth) for r in runs} == {(1.0, 1), (1.0, 2), (4.0, 1), (4.0, 2)}
    # counting.results is read, not sampled: it changes no run id
    raw["counting"]["results"] = "somewhere"
    assert [r.run_id for r in expand(parse_spec(raw))] == [r.run_id for r in runs]
    shipped = dl.load_spec(REPO / "experiments" / "counting_bitworld.toml")
    assert shipped.kind == "counting" and [a.values for a in shipped.sweep.values()] == [[0.25, 1.0, 4.0]]
    assert shipped.counting.chains * shipped.counting.steps * len(shipped.seeds) >= 100_000  # issue 15: at least 1e5 samples


@pytest.mark.parametrize(
    "change,message",
    [
        ({"sweep": {"s": {"path": "model.colour", "values": [1]}}}, "sweep.s.path: no field 'model.colour'"),
        ({"sweep": {"s": {"path": "optimizer.lr", "values": [1]}}}, "sweep.s.path: a dotted path into world, model, counting or verdict"),
        ({"sweep": {"s": {"path": "model.weight_scale", "values": [0]}}}, "sweep: condition s=0: model.weight_scale: Input should be greater than or equal to 0.001"),
        ({"counting": {"chains": 1}}, "counting.chains: Input should be greater than or equal to 2"),
        ({"counting": {"fit_rows": 999}}, "counting.fit_rows: must be between 1 and 256"),
        ({"world": {"name": "gridworld"}}, "world: gridworld is of the gridworld family; the NNGP is the MLP family's"),
    ],
)
def test_bad_counting_specs_are_one_line(change, message):
    raw = {**tomllib.loads(COUNTING_TOML), **change}
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "section,message",
    [
        ({"init": "xavier"}, "function_prior.init: unknown init 'xavier'"),
        ({"init": "uniform:1/2"}, "function_prior.init: 2 bounds for the 3 layers of widths [40, 40]"),
        ({"inputs": "boolean:20"}, "function_prior.inputs: boolean:n needs a whole number 1 <= n <= 16"),
        ({"inputs": "cube"}, "function_prior.inputs: String should match pattern"),
        ({"widths": [0]}, "function_prior.widths: hidden widths must be whole numbers from 1 to 4096"),
    ],
)
def test_bad_function_prior_specs_are_one_line(section, message):
    raw = {"kind": "function_prior", "name": "f", "function_prior": section}
    with pytest.raises(SpecError) as e:
        parse_spec(raw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_init_names_agree_with_the_sampler():
    """sweep checks an init's name before it runs (it cannot import measure.prior.Init): the same names pass and fail."""
    from deceptionlab.measure.prior import Init
    from deceptionlab.sweep.measurements import init_layers

    for text in ("torch", "valle-perez", "he-uniform", "kaiming,bias=0", "lecun", "uniform:1", "uniform:1/2/3", "uniform:0.5,bias=2"):
        Init.parse(text)
        init_layers(text)
    for text in ("xavier", "uniform:-1", "uniform:0", "torch,bias=-1", "torch,colour=1", "uniform:a"):
        with pytest.raises(ValueError):
            Init.parse(text)
        with pytest.raises(ValueError):
            init_layers(text)


def test_cli_refuses_bad_sampled_specs_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(COUNTING_TOML.replace('path = "model.weight_scale"', 'path = "model.colour"'))
    res = cli("run", bad, "-o", tmp_path / "never", cwd=REPO, env=ENV)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "sweep.scale.path: no field 'model.colour'" in res.stderr
    bad.write_text('kind = "function_prior"\nname = "f"\n[function_prior]\ninit = "xavier"\n')
    res = cli("run", bad, "-o", tmp_path / "never", cwd=REPO, env=ENV)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "unknown init 'xavier'" in res.stderr
    assert not (tmp_path / "never").exists()


def test_the_sweep_layer_alone_refuses_a_kind_it_cannot_sample(tmp_path):
    with pytest.raises(SpecError, match="kind 'counting': its chunks sample with deceptionlab.measure.sampled.counting_chunk"):
        run_experiment(dl.load_spec(_counting_spec(tmp_path)), tmp_path / "out", **QUIET)
    assert not (tmp_path / "out").exists()


FUNCTION_PRIOR = {"kind": "function_prior", "name": "vp_small", "seeds": 4,
                  "function_prior": {"inputs": "boolean:5", "widths": [8, 8], "init": "valle-perez", "block": 3000}}


def test_function_prior_kind_runs_from_toml_resumes_and_matches_the_sampler(tmp_path):
    from deceptionlab.core.rng import derive_seed
    from deceptionlab.measure.prior import boolean_inputs, complexity_correlation, sample_functions

    path = tmp_path / "fp.toml"
    path.write_text(to_toml(FUNCTION_PRIOR))
    out = tmp_path / "fp"
    dl.run(path, out, progress=False, workers=1)
    assert Store(out).kind() == "function_prior" and schema.unknown_columns(load(out).columns, kind="function_prior") == []
    first = dl.function_prior_results(out)
    assert first["count"].sum() == 4 * 3000 and first.frequency.sum() == pytest.approx(1.0)
    assert set(first.function[:2]) == {"ffffffff", "00000000"}  # the constant functions lead (Valle-Perez et al.)
    assert complexity_correlation(first)["spearman"] < -0.2  # simpler functions are likelier
    # run for run the sampler's: each run draws its block from (seed, "function_prior/0")
    direct = pd.concat([sample_functions(boolean_inputs(5), [8, 8], 3000, "valle-perez", derive_seed(s, "function_prior/0"), complexity_for=0)
                        for s in range(4)]).groupby("function")["count"].sum()
    pd.testing.assert_series_equal(first.set_index("function")["count"].sort_index(), direct.sort_index(), check_names=False)
    spec = parse_spec(FUNCTION_PRIOR)
    assert run_experiment(spec, out, **_work())["trained"] == 0
    gone = _halve(out)
    assert run_experiment(spec, out, **_work())["trained"] == gone
    pd.testing.assert_frame_equal(dl.function_prior_results(out), first)


def test_prior_without_a_world_runs_a_function_prior_spec_into_its_folder(tmp_path):
    out = tmp_path / "vp"
    args = ["prior", "--inputs", "boolean:4", "--arch", "8", "--samples", "2000", "--init", "valle-perez", "--out", str(out), "--workers", "1"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert Store(out).kind() == "function_prior" and len(Store(out).parts()) == 1
    stored = pd.read_parquet(out / "functions.parquet")
    assert stored["count"].sum() == 2000
    pd.testing.assert_frame_equal(stored, dl.function_prior_results(out))  # the table is the stored runs'
    again = CliRunner().invoke(app, args)  # the same options: nothing drawn again, the same table
    assert again.exit_code == 0 and len(Store(out).parts()) == 1
    pd.testing.assert_frame_equal(pd.read_parquet(out / "functions.parquet"), stored)
    shown = CliRunner().invoke(app, ["show", str(out), "-f", "csv"])
    assert shown.exit_code == 0 and pd.read_csv(io.StringIO(shown.output))["count"].sum() == 2000
    spec = tmp_path / "fp.toml"
    spec.write_text(to_toml(FUNCTION_PRIOR))
    from_spec = CliRunner().invoke(app, ["prior", "--spec", str(spec), "--workers", "1"])
    assert from_spec.exit_code == 0 and "5-8-8-1 on boolean:5, init valle-perez: 12,000" in from_spec.output, from_spec.output


def test_shipped_sampled_specs_parse_and_show_prints_a_counting_folder(tmp_path):
    vp = dl.load_spec(REPO / "experiments" / "function_prior_valle_perez.toml")
    assert vp.kind == "function_prior" and vp.function_prior.init == "valle-perez" and vp.function_prior.widths == [40, 40]
    assert vp.function_prior.inputs == "boolean:7" and len(vp.seeds) * vp.function_prior.block == 1_000_000
    raw = {**tomllib.loads(COUNTING_TOML), "seeds": 1, "sweep": {}}
    out = tmp_path / "c"
    dl.run_counting(out, raw, workers=1)
    shown = CliRunner().invoke(app, ["show", str(out)])
    assert shown.exit_code == 0 and "P(class | S)" in shown.output and "ESS min" in shown.output, shown.output
    csv = CliRunner().invoke(app, ["show", str(out), "-f", "csv"])
    assert set(pd.read_csv(io.StringIO(csv.output)).source) == {"naive", "prior", "nngp"}


def test_a_missing_p_sgd_folder_is_refused_before_sampling(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text(COUNTING_TOML.replace("prior_samples = 256", f'prior_samples = 256\nresults = "{tmp_path / "nowhere"}"'))
    res = CliRunner().invoke(app, ["run", str(bad), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "counting.results: " in res.output and "no such results folder" in res.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(dl.StoreError, match="no such results folder"):
        dl.run_counting(tmp_path / "out", tomllib.loads(bad.read_text()))
    assert not (tmp_path / "out").exists()


FINITE_TOML = """
kind = "counting"
name = "counting_finite"
seeds = 2

[world]
name = "bitworld"

[model]
depth = 1
width = 16

[counting]
chains = 20
steps = 8
burn_in = 20
naive_samples = 0
fit_rows = 4
finite_chains = 12
finite_steps = 8
finite_burn_in = 10

[verdict]
threshold = 0.55
"""


def test_counting_kind_runs_the_finite_width_posterior_when_asked(tmp_path):
    """`counting.finite_chains` adds source "finite" (the MLP's own weights conditioned on fitting S) to the
    stored runs and the pooled table, with the sampler's counts run for run; at 0 (the default) the run ids
    are those of a spec written before the field existed."""
    from deceptionlab.core.rng import derive_seed
    from deceptionlab.measure.counting import Problem
    from deceptionlab.measure.counting.finite import Networks, finite_classes
    from deceptionlab.sweep import expand

    out = tmp_path / "counting"
    dl.run(_counting_spec(tmp_path, FINITE_TOML), out, progress=False, workers=1)
    frame = load(out)
    assert schema.unknown_columns(frame.columns, (), kind="counting") == []
    table, _ = dl.counting_results(out)
    fin = table[table.source == "finite"].set_index("verdict")
    assert set(table.source) == {"nngp", "finite"} and (fin.n == frame.finite_samples.sum()).all() and (fin.ess > 0).all()
    world = Bitworld()
    problem = Problem.of(world, fit_rows=4, seed=0, threshold=0.55)
    counts = sum(finite_classes(problem, Networks(world.input_dim, 1, 16, 1.0), chains=12, steps=8, burn_in=10,
                                seed=derive_seed(s, "counting/0/finite")).table.set_index("verdict")["count"] for s in (0, 1))
    pd.testing.assert_series_equal(fin["count"], counts.astype(fin["count"].dtype), check_names=False)
    raw = tomllib.loads(FINITE_TOML)
    with_finite = [r.run_id for r in expand(parse_spec(raw))]
    for k in ("finite_chains", "finite_steps", "finite_burn_in"):
        raw["counting"].pop(k)
    without = expand(parse_spec(raw))
    assert "finite_chains" not in without[0].config.normalised()["counting"] and set(with_finite).isdisjoint(r.run_id for r in without)
    raw["counting"]["finite_steps"] = 99  # without chains, the other finite fields change nothing
    assert [r.run_id for r in expand(parse_spec(raw))] == [r.run_id for r in without]
