"""`--format csv|json` on `prior` and `speed` (issue 19): the table alone on stdout, readable by pandas,
its numbers the ones the table shows; progress and notes on stderr."""

from __future__ import annotations

import io

import pandas as pd

from tests.conftest import cli


def test_prior_functions_and_class_prior_as_csv_and_json(tmp_path):
    res = cli("prior", "--inputs", "boolean:3", "--arch", "8", "--samples", "2000", "--format", "csv")
    assert res.returncode == 0, res.stderr
    functions = pd.read_csv(io.StringIO(res.stdout), dtype={"function": str})
    assert list(functions.columns) == ["function", "count", "frequency", "complexity"]
    assert functions["count"].sum() == 2000 and abs(functions.frequency.sum() - 1) < 1e-9 and functions.function.is_unique
    assert "Spearman" in res.stderr and "┏" not in res.stdout + res.stderr  # no table drawn in csv mode
    res = cli("prior", "--world", "bitworld", "--arch", "8,8", "--samples", "2000", "--format", "json")
    assert res.returncode == 0, res.stderr
    classes = pd.read_json(io.StringIO(res.stdout), orient="records")
    prior = classes[classes.source == "prior"]
    assert set(prior.verdict) >= {"internal", "deceptive", "unfit"} and prior.n.eq(2000).all() and abs(prior.p.sum() - 1) < 1e-9


def test_speed_tables_as_one_long_csv(tmp_path):
    res = cli("speed", "-o", tmp_path / "sp", "--imitation-widths", "1,2", "--imitation-depths", "1", "--imitation-seeds", "2",
              "--imitation-steps", "50", "--seeds", "2", "--widths", "8", "--betas", "0,1", "--steps", "50", "--own-goal-steps", "0",
              "--format", "csv")
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(io.StringIO(res.stdout))
    assert set(frame.table) == {"compute", "ponder"}
    assert sorted(frame[frame.table == "compute"]["class"]) == ["corrigible", "deceptive", "internal", "proxy"]
    ponder = frame[frame.table == "ponder"]
    assert sorted(set(ponder.beta)) == [0.0, 1.0] and ponder.groupby("beta").p.sum().sub(1).abs().max() < 1e-9
    assert ponder.n.eq(2).all() and ponder.train_accuracy.between(0, 1).all()


def test_show_fits_80_columns_with_abbreviated_headers_a_legend_and_no_value_cut(tmp_path):
    """A narrow console ($DECEPTIONLAB_WIDTH=80, as an 80-column terminal): no line wider, no header split mid-word (abbreviated, with a legend),
    every verdict share printed whole (the table in parts, each repeating the condition's columns)."""
    import os

    from tests.conftest import tiny_spec_text

    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=2, steps=40).replace(
        'values = ["off", "cue"] }', 'values = ["off", "cue"] }\noverseer_model = { path = "world.knobs.overseer_model", values = [false, true] }'))
    assert cli("run", spec, "-o", tmp_path / "res", "--no-show").returncode == 0
    narrow = cli("show", tmp_path / "res", env={**os.environ, "DECEPTIONLAB_WIDTH": "80"})
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert "sa = situational_awareness" in narrow.stdout and "om = overseer_model" in narrow.stdout
    assert "situa" not in narrow.stdout.replace("situational_awareness", "")  # the header appears only in the legend
    shares = pd.read_csv(io.StringIO(cli("show", tmp_path / "res", "--format", "csv").stdout))
    for r in shares.itertuples():  # each share as the table writes it: "p (low-high)" in %
        assert f"{100 * r.p:.0f} ({100 * r.low:.0f}-{100 * r.high:.0f})" in narrow.stdout
    wide = cli("show", tmp_path / "res", env={k: v for k, v in os.environ.items() if k != "DECEPTIONLAB_WIDTH"})  # piped: 160 columns
    assert "┃ situational_awareness ┃ overseer_model ┃" in wide.stdout.split("compliance gap")[0]  # the shares' table whole
