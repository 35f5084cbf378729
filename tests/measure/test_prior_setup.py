"""Valle-Perez et al. 2019's published prior setup from documented options (docs/counting.md): per-layer
uniform bounds, He-uniform and the paper's output bound, a bias scale apart from the weights, +-1
inputs, and the correlation over functions seen at least k times."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from deceptionlab.measure.prior import Init, boolean_inputs, complexity_correlation, sample_functions
from tests.conftest import cli


def test_named_and_per_layer_bounds():
    vp = Init.parse("valle-perez")
    assert [vp.scale(f, l, 3) for l, f in enumerate((7, 40, 40))] == pytest.approx([math.sqrt(6 / 7), math.sqrt(6 / 40), math.sqrt(3 / 40)])
    assert Init.parse("he-uniform").scale(40, 2, 3) == pytest.approx(math.sqrt(6 / 40))
    per = Init.parse("uniform:0.5/0.25/2")
    assert [per.scale(9, l, 3) for l in range(3)] == [0.5, 0.25, 2.0]
    with pytest.raises(ValueError, match="3 bounds for 2 layers"):
        per.scale(9, 0, 2)
    assert Init.parse("torch,bias=0").bias == 0.0
    for bad in ("uniform:1/-2", "torch,bias=-1", "torch,weights=2", "glorot"):
        with pytest.raises(ValueError):
            Init.parse(bad)


def test_bias_scale_zero_means_no_bias():
    # without biases a ReLU net is positively homogeneous: f(0) = 0 -> decision 0 on the all-zero input
    x = boolean_inputs(3)
    f = sample_functions(x, [8], 300, "torch,bias=0", seed=0)
    first_bits = [int(t[0], 16) >> 3 for t in f.function]  # the all-zero input is the first
    assert set(first_bits) == {0}
    g = sample_functions(x, [8], 300, "torch", seed=0)
    assert {int(t[0], 16) >> 3 for t in g.function} == {0, 1}


def test_signed_inputs_move_the_origin():
    # without biases, 0/1 inputs force decision 0 on the all-zero input; as +-1 that input is (-1, ..., -1),
    # where a bias-free ReLU net decides either way
    x = 2 * boolean_inputs(3) - 1
    f = sample_functions(x, [8], 400, "torch,bias=0", seed=0)
    first = sum(c for t, c in zip(f.function, f["count"]) if int(t[0], 16) >> 3) / 400
    assert 0.3 < first < 0.7


def test_correlation_over_functions_seen_k_times():
    f = pd.DataFrame({"function": list("abcdef"), "count": [50, 20, 9, 1, 1, 1], "frequency": [.5, .2, .09, .01, .01, .01],
                      "complexity": [1.0, 2.0, 3.0, 9.0, 4.0, 2.0]})
    assert complexity_correlation(f, min_count=5)["n_functions"] == 3
    assert complexity_correlation(f, min_count=5)["spearman"] == pytest.approx(-1.0)
    assert complexity_correlation(f)["n_functions"] == 6


def test_cli_runs_the_published_setup(tmp_path):
    r = cli("prior", "--inputs", "boolean:7", "--arch", "40,40", "--init", "valle-perez", "--samples", "2000", "--min-count", "2")
    assert r.returncode == 0, r.stderr
    assert "init valle-perez" in r.stdout and "seen at least 2 times" in r.stdout
    r = cli("prior", "--inputs", "boolean:5", "--signed", "--samples", "500", "--arch", "8")
    assert r.returncode == 0 and "(+-1)" in r.stdout, r.stderr
    r = cli("prior", "--init", "uniform:1/2", "--arch", "40,40", "--samples", "10")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
