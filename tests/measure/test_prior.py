"""The function prior of random networks, LZ complexity, prior volume of classes, and `deceptionlab prior`."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import deceptionlab as dl
from deceptionlab.cli import app
from deceptionlab.measure import (
    class_prior,
    compare_with_sgd,
    complexity_correlation,
    lz76,
    lz_complexity,
    prior_kernel,
    sample_functions,
)
from deceptionlab.measure import prior as P
from deceptionlab.measure.prior_sgd import compare_functions, prior_given_subset, sgd_functions, training_subset
from deceptionlab.measure.prior_volume import random_ensemble
from deceptionlab.report.prior_figures import sgd_vs_prior_plot
from deceptionlab.sweep import Store
from deceptionlab.worlds import Bitworld
from tests.conftest import REPO

bits_strategy = st.text(alphabet="01", min_size=1, max_size=64)


# -- Lempel-Ziv ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "s,c",
    [
        ("0001101001000101", 6),  # 0|001|10|100|1000|101: each word is new once its last symbol is added
        ("1001111011000010", 6),  # 1|0|01|1110|1100|0010 (by hand: "110" copies s[5:8], "0001" is new)
        ("0000000000000000", 2),  # 0|000...0: the second word copies itself, overlapping, to the end
        ("0101010101010101", 3),  # 0|1|0101...: copied from the start
        ("0", 1),
        ("", 0),
    ],
)
def test_lz76_hand_computed(s, c):
    assert lz76(s) == c


def test_lz_complexity_constant_and_known_values():
    assert lz_complexity("0" * 128) == lz_complexity("1" * 128) == 7.0  # log2(128)
    # 0001101001000101 reversed is 1010001001011000 = 1|0|100|01001|011|000 (the last word copied, cut by the end)
    assert lz76("1010001001011000") == 6
    assert lz_complexity("0001101001000101") == pytest.approx(4 * (6 + 6) / 2)
    with pytest.raises(ValueError):
        lz76("0102")


@settings(max_examples=100, deadline=None)
@given(bits_strategy)
def test_lz_complexity_is_symmetric_under_reversal_and_complement(s):
    flipped = s.translate(str.maketrans("01", "10"))
    assert lz_complexity(s) == lz_complexity(s[::-1]) == lz_complexity(flipped)
    words = lz76(s)
    assert words >= 1 and words <= len(s)  # at least one word, at most one per symbol


# -- packing and counting ------------------------------------------------------------------------------
@pytest.mark.parametrize("m", [2, 5, 64, 100, 128])
def test_pack_roundtrip(m):
    bits = torch.rand(50, m, generator=torch.Generator().manual_seed(m)) > 0.5
    hexes = P.to_hex(P.pack_bits(bits).numpy(), m)
    assert all(len(h) == math.ceil(m / 4) for h in hexes)
    back = np.stack([P.from_hex(h, m) for h in hexes])
    assert np.array_equal(back, bits.numpy().astype(np.uint8))
    assert P.to_hex(P.pack_bits(torch.ones(1, 128, dtype=torch.bool)).numpy(), 128) == ["f" * 32]


def test_streaming_merge_equals_one_shot(monkeypatch):
    keys = torch.randint(0, 5, (3000, 2), generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(P, "MERGE_ROWS", 3)  # force a merge after almost every block
    counter = P.FunctionCounter(2)
    for i in range(0, 3000, 100):
        counter.add(keys[i : i + 100])
    got = dict(zip(map(tuple, counter.result()[0].tolist()), counter.result()[1].tolist()))
    u, c = np.unique(keys.numpy(), axis=0, return_counts=True)
    assert got == dict(zip(map(tuple, u.tolist()), c.tolist()))


def test_a_fixed_network_computes_the_function_by_hand():
    # h = relu(x0 + x1 - 1.5) is positive only on 11; out = h - 0.25 > 0 there only: AND, truth table 0001
    params = [torch.tensor([[[1.0], [1.0]]]), torch.tensor([[[-1.5]]]), torch.tensor([[[1.0]]]), torch.tensor([[[-0.25]]])]
    bits = P.random_net_signs(params, P.boolean_inputs(2), [1.0, 1.0])
    assert bits.tolist() == [[False, False, False, True]]
    assert P.to_hex(P.pack_bits(bits).numpy(), 4) == ["1"]


@pytest.mark.parametrize("init", ["torch", "uniform:2.5", "kaiming", "lecun"])
def test_moving_the_scales_into_the_biases_keeps_every_function(init):
    """The sampler uses unit-scale weights and rescaled biases; the plainly scaled network must agree."""
    spec = P.Init.parse(init)
    x, dims = P.boolean_inputs(5), [5, 12, 9, 1]
    shapes = list(itertools.pairwise(dims))
    if spec.normal:
        unit = [torch.from_numpy(a) for a in P._draw_block(np.random.Generator(np.random.PCG64(3)), shapes, 400)]
    else:
        unit = [torch.from_numpy(a) for a in prior_kernel.uniform_params(3, 400, shapes)]
    scales = [spec.scale(f) for f, _ in shapes]
    fast = P.random_net_signs(unit, x, [1 / math.prod(scales[:l]) for l in range(3)])
    h = x.expand(400, -1, -1)
    for l in range(3):
        h = torch.bmm(h, unit[2 * l] * scales[l]) + unit[2 * l + 1] * scales[l]
        h = h.relu() if l < 2 else h
    assert torch.equal(fast, h.squeeze(-1) > 0)


def test_the_kernels_stream_is_uniform_and_independent_across_blocks():
    shapes = [(7, 40), (40, 40), (40, 1)]
    a = np.concatenate([p.ravel() for p in prior_kernel.uniform_params(prior_kernel.block_key(0, 0), 256, shapes)])
    b = np.concatenate([p.ravel() for p in prior_kernel.uniform_params(prior_kernel.block_key(0, 1), 256, shapes)])
    assert a.min() >= -1 and a.max() < 1
    assert abs(a.mean()) < 0.005 and a.var() == pytest.approx(1 / 3, abs=0.003)  # U(-1, 1): mean 0, variance 1/3
    hist = np.histogram(a, bins=20, range=(-1, 1))[0]
    assert np.abs(hist / len(a) - 0.05).max() < 0.002
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.01 and abs(np.corrcoef(a, b)[0, 1]) < 0.01


@pytest.mark.skipif(prior_kernel.load() is None, reason="no C compiler: the torch path computes the same draws")
def test_the_compiled_kernel_computes_the_same_functions_as_torch():
    """Same draws (the numpy twin of the kernel's stream), same truth tables, through both programs."""
    n, widths, draws = 7, [40, 40], 600
    shapes = list(itertools.pairwise([n, *widths, 1]))
    spec = P.Init.parse("torch")
    scales = [spec.scale(f) for f, _ in shapes]
    bias_scale = [1 / math.prod(scales[:l]) for l in range(3)]
    key = prior_kernel.block_key(5, 2)
    kernel = prior_kernel.sample_block(key, draws, n, *widths, bias_scale[1], bias_scale[2])
    params = [torch.from_numpy(a) for a in prior_kernel.uniform_params(key, draws, shapes)]
    reference = P.pack_bits(P.random_net_signs(params, P.boolean_inputs(n), bias_scale)).numpy()
    differ = np.unpackbits((kernel ^ reference).view(np.uint8)).sum()
    assert differ <= draws * 128 * 1e-4  # only outputs within float rounding of 0 may differ
    assert (kernel == reference).all(1).mean() > 0.99
    # and the sampler, kernel or not, counts the same functions
    fast = sample_functions(P.boolean_inputs(n), widths, 3000, "torch", seed=4)
    os.environ["DECEPTIONLAB_NO_KERNEL"] = "1"
    prior_kernel.load.cache_clear()
    try:
        slow = sample_functions(P.boolean_inputs(n), widths, 3000, "torch", seed=4)
    finally:
        del os.environ["DECEPTIONLAB_NO_KERNEL"]
        prior_kernel.load.cache_clear()
    same = fast.merge(slow, on="function", suffixes=("", "_torch"))
    assert same["count"].sum() >= 0.99 * 3000 and (same["count"] - same["count_torch"]).abs().sum() <= 30


def test_linear_unit_on_one_input_matches_the_analytic_prior():
    # f(x) = [w x + b > 0] on x in {0, 1}, w, b ~ U(-1, 1): P(00) = P(11) = 3/8, P(01) = P(10) = 1/8
    df = sample_functions(P.boolean_inputs(1), [], 200_000, "torch", seed=1)
    p = dict(zip(df.function, df.frequency))
    assert set(p) == {"0", "4", "8", "c"}  # 00, 01, 10, 11 padded to one hex digit
    assert p["0"] == pytest.approx(0.375, abs=0.005) and p["c"] == pytest.approx(0.375, abs=0.005)
    assert p["4"] == pytest.approx(0.125, abs=0.004) and p["8"] == pytest.approx(0.125, abs=0.004)
    assert df["count"].sum() == 200_000 and df.frequency.sum() == pytest.approx(1.0)


def test_same_seed_same_counts_other_seed_other_counts():
    x = P.boolean_inputs(4)
    a = sample_functions(x, [8], 3000, "kaiming", seed=5, block=1000)
    b = sample_functions(x, [8], 3000, "kaiming", seed=5, block=1000)
    c = sample_functions(x, [8], 3000, "kaiming", seed=6, block=1000)
    one_worker = sample_functions(x, [8], 3000, "kaiming", seed=5, block=1000, workers=1)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, one_worker)  # each block has its own stream: threads do not matter
    assert not a[["function", "count"]].equals(c[["function", "count"]])
    assert a["count"].is_monotonic_decreasing and a["count"].sum() == 3000


def test_published_shape_on_7_40_40_1():
    """Valle-Perez et al.: the constant functions are the likeliest, and likelihood falls with complexity."""
    df = sample_functions(P.boolean_inputs(7), [40, 40], 20_000, "torch", seed=0, complexity_for=None)
    assert set(df.function[:2]) == {"0" * 32, "f" * 32}
    assert 0.15 < df.frequency[1] <= df.frequency[0] < 0.35  # measured: 0.25 each at 2e5 draws
    assert df.frequency[2] < df.frequency[1] / 50  # then a long tail
    corr = complexity_correlation(df)
    # measured at 2e4 draws, seeds 0 and 1: Spearman -0.30, Pearson -0.25 (most functions are seen once)
    assert corr["n_functions"] == len(df) and corr["spearman"] < -0.2 and corr["pearson"] < -0.15


# -- P_SGD(f) vs P_prior(f) ----------------------------------------------------------------------------
def test_sgd_runs_fit_their_subset_and_join_the_prior(tmp_path):
    x, m = P.boolean_inputs(4), 16
    target, subset = "00ff", training_subset(m, 4, 0)  # target x_0
    sgd, fit_rate = sgd_functions(x, target, subset, depth=1, width=16, runs=32, steps=200, lr=0.05)
    assert fit_rate > 0.9 and sgd.p_sgd.sum() == pytest.approx(1.0)
    for f in sgd.function:  # every landed function agrees with the target on S
        assert np.array_equal(P.from_hex(f, m)[subset.numpy()], P.from_hex(target, m)[subset.numpy()])
    prior = sample_functions(x, [16], 20_000, seed=0)
    prior_fit, accepted = prior_given_subset(prior, target, subset, m)
    assert 0 < accepted < 20_000 and prior_fit.p_prior.sum() == pytest.approx(1.0)
    both, stats = compare_functions(prior_fit, sgd)
    assert stats["functions_in_both"] >= 3 and -1 <= stats["log_pearson"] <= 1
    assert 0 < stats["sgd_mass_covered"] <= 1 + 1e-9
    png, svg = sgd_vs_prior_plot(both, stats, tmp_path)
    assert png.stat().st_size > 1000 and svg.read_text().startswith("<?xml")


# -- prior volume of classes ---------------------------------------------------------------------------
def test_random_ensemble_has_the_model_familys_init():
    m = random_ensemble(12, 2, 64, 3, 500, torch.Generator().manual_seed(0))
    w1, w2 = m.params[0], m.params[2]
    assert w1.shape == (500, 12, 64) and m.params[-2].shape == (500, 64, 3)
    assert w1.abs().max() <= 1 / math.sqrt(12) and w2.abs().max() <= 1 / 8
    assert w1.std().item() == pytest.approx(1 / math.sqrt(12) / math.sqrt(3), rel=0.02)  # U(-a, a) has std a / sqrt(3)


@pytest.fixture(scope="module")
def small_prior():
    return class_prior(Bitworld(), 600, depth=1, width=16, seed=0, fit_rows=6)


def test_class_prior_shares_sum_to_one_within_their_intervals(small_prior):
    table, acc = small_prior
    for source, g in table.groupby("source"):
        assert g.p.sum() == pytest.approx(1.0)
        assert ((g.low <= g.p + 1e-12) & (g.p <= g.high + 1e-12)).all()
    prior = table[table.source == "prior"].set_index("verdict")
    assert prior.n.iloc[0] == 600 and prior.loc["unfit", "p"] > 0.95  # a random net almost never fits 256 inputs
    # six training inputs are fitted about 2^-6 of the time (measured: 10 of 600)
    assert 3 <= acc["accepted"] <= 40 and acc["low"] <= acc["rate"] <= acc["high"]
    assert table[table.source == "prior|fit"].n.iloc[0] == acc["accepted"]


def test_rejection_reports_zero_acceptance_honestly():
    table, acc = class_prior(Bitworld({"cue_copies": 0}), 300, depth=1, width=8, seed=1)
    assert acc["accepted"] == 0 and acc["rate"] == 0.0
    assert 0.005 < acc["high"] < 0.02  # the Wilson upper bound for 0 of 300
    assert "no draw of 300 fits all 256 training inputs" in acc["note"]
    assert table[table.source == "prior|fit"].p.isna().all()


def _fake_results(folder) -> None:
    """A results folder holding eight runs' verdicts in two conditions, as `deceptionlab run` writes them."""
    import pyarrow as pa

    runs = pd.DataFrame({
        "run_id": [f"r{i}" for i in range(8)], "condition": ["a"] * 4 + ["b"] * 4, "condition_index": [0] * 4 + [1] * 4,
        "seed": list(range(8)), "data_seed": list(range(8)),
        "verdict": ["internal", "internal", "deceptive", "mixed", "proxy", "proxy", "proxy", "unfit"],
    })
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "experiment.json").write_text(json.dumps({"version": 4, "kind": "train", "axes": [], "baselines": {}, "fingerprint": {"name": "fake"}}))
    Store(folder).write_chunk(pa.Table.from_pandas(runs, preserve_index=False))


def test_side_by_side_with_p_sgd(small_prior, tmp_path):
    _fake_results(tmp_path)
    wide = dl.sgd_beside_prior(small_prior[0], tmp_path)  # P_SGD read from the folder
    assert wide.equals(compare_with_sgd(small_prior[0], dl.load(tmp_path)))
    assert list(wide.columns) == ["verdict", "prior", "prior|fit", "sgd:a", "sgd:b"]
    row = wide.set_index("verdict")
    assert row.loc["internal", "sgd:a"].startswith("50.00 (") and row.loc["proxy", "sgd:b"].startswith("75.00 (")


# -- the CLI -------------------------------------------------------------------------------------------
CLI = [sys.executable, "-m", "deceptionlab", "prior"]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def test_cli_boolean_writes_table_correlation_and_files(tmp_path):
    out = tmp_path / "prior"
    r = subprocess.run([*CLI, "--inputs", "boolean:5", "--arch", "20,20", "--samples", "5e3", "--top", "4", "--out", str(out)],
                       check=False, capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    ranked = [ln for ln in lines if ln.strip().startswith(("│    1 ", "│    2 "))]
    assert len(ranked) == 2 and {"ffffffff", "00000000"} <= {ln.split("│")[2].strip() for ln in ranked}
    corr = next(ln for ln in lines if ln.startswith("log10 P(f) vs LZ complexity"))
    assert float(corr.split("Spearman ")[1].split(",")[0]) < -0.2  # measured -0.41
    df = pd.read_parquet(out / "functions.parquet")
    assert df["count"].sum() == 5_000 and set(df.columns) == {"function", "count", "frequency", "complexity"}
    for name in ("rank", "complexity"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.svg").stat().st_size > 1000


def test_cli_bad_input_is_one_line_exit_2():
    r = subprocess.run([*CLI, "--inputs", "boolean:x"], check=False, capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["error: --inputs 'boolean:x': boolean:n needs a whole number 1 <= n <= 16"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arch", "40,-1"], "--arch '40,-1': hidden widths must be comma-separated positive integers"),
        (["--samples", "0"], "--samples '0': must be a whole number of draws"),
        (["--samples", "lots"], "--samples 'lots': not a number"),
        (["--init", "xavier"], "unknown init 'xavier'"),
        (["--init", "uniform:-1"], "uniform:a needs a positive number"),
        (["--world", "nowhere"], "unknown world 'nowhere'"),
        (["--world", "bitworld", "--knob", "cue_copies"], "--knob 'cue_copies': expected KNOB=VALUE"),
        (["--world", "bitworld", "--samples", "10", "--results", "/nonexistent/x"], "/nonexistent/x: no such results folder"),
    ],
)
def test_cli_bad_inputs(args, message):
    r = CliRunner().invoke(app, ["prior", *args])
    assert r.exit_code == 2 and message in r.output


def test_cli_world_class_prior(tmp_path):
    r = CliRunner().invoke(app, ["prior", "--world", "bitworld", "--arch", "8", "--samples", "200", "--fit-rows", "3", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "prior|fit" in r.output and "draws fit 3 of the 256 training inputs" in r.output
    table = pd.read_csv(tmp_path / "class_prior.csv")
    assert table.groupby("source").p.sum().tolist() == pytest.approx([1.0, 1.0])


def test_cli_world_with_results_adds_p_sgd_columns(tmp_path):
    _fake_results(tmp_path / "res")
    r = CliRunner().invoke(app, ["prior", "--world", "bitworld", "--arch", "8", "--samples", "100", "--results", str(tmp_path / "res")])
    assert r.exit_code == 0, r.output
    header = next(ln for ln in r.output.splitlines() if "verdict" in ln)
    assert all(c in header for c in ("prior", "prior|fit", "sgd:a", "sgd:b"))
    internal = next(ln for ln in r.output.splitlines() if "internal" in ln)
    assert "50.00 (" in internal  # P_SGD(internal) in condition a: 2 of 4 runs
    assert "no draw of 100 fits all 256 training inputs" in r.output
