"""The bias model's description lengths from a measured counting result (issue 15 part 5): -log2 P of the
chosen source per class, a lower bound where no sample fell in a class, and the prediction moving the way
the measured lengths say; the report and `theory` read the lengths from a folder or a table."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

import deceptionlab as dl
from deceptionlab.cli import app, run_cli
from deceptionlab.core.stats import wilson
from deceptionlab.theory import BiasParams, bias_params_from_counting, bias_predictions, description_lengths


def _table(counts: dict[str, int], n: int = 10_000, source: str = "nngp", condition: str = "base") -> pd.DataFrame:
    rows = []
    for v in ("internal", "corrigible", "deceptive", "proxy", "mixed", "unfit"):
        k = counts.get(v, 0)
        lo, hi = (float(b) for b in wilson(k, n))
        rows.append({"condition": condition, "source": source, "verdict": v, "count": k, "n": n, "ess": float(n), "p": k / n,
                     "low": lo, "high": hi, "bits": -math.log2(k / n) if k else math.inf, "bits_low": -math.log2(hi),
                     "bits_high": -math.log2(lo) if lo > 0 else math.inf})
    return pd.DataFrame(rows)


def test_measured_lengths_replace_the_texts_defaults_and_move_the_prediction():
    texts = bias_predictions(BiasParams()).set_index("class")
    assert description_lengths(BiasParams()) == {"internal": 20.0, "corrigible": 10.0, "deceptive": 5.0}  # the texts' assumptions
    # a measured posterior where deceptive policies are rare and internal ones common: the opposite of the texts
    rare = _table({"internal": 5000, "corrigible": 1000, "deceptive": 10, "mixed": 3990})
    params, sources = bias_params_from_counting(rare)
    bits = description_lengths(params)
    assert bits["internal"] == pytest.approx(1.0) and bits["corrigible"] == pytest.approx(-math.log2(0.1))
    assert bits["deceptive"] == pytest.approx(-math.log2(0.001))  # the situational reasoning is inside the measured share
    assert sources["objective_bits"] == "counting (base): -log2 P_B(internal | S) = -log2 0.5"
    measured = bias_predictions(params).set_index("class")
    assert measured.loc["deceptive", "p_simplicity_only"] < 0.01 < texts.loc["deceptive", "p_simplicity_only"]
    assert measured.loc["internal", "p_simplicity_only"] > 0.8 > texts.loc["internal", "p_simplicity_only"]
    # more deceptive samples, shorter deceptive description, likelier deceptive: the direction the counting argument says
    common = bias_params_from_counting(_table({"internal": 5000, "corrigible": 1000, "deceptive": 2000, "mixed": 2000}))[0]
    assert bias_predictions(common).set_index("class").loc["deceptive", "p"] > measured.loc["deceptive", "p"]


def test_a_class_never_sampled_gets_a_lower_bound_from_the_interval():
    none = _table({"internal": 5000, "corrigible": 100, "mixed": 4900})  # no deceptive sample in 10,000
    params, sources = bias_params_from_counting(none)
    high = float(wilson(0, 10_000)[1])
    assert params.long_term_goal_bits == pytest.approx(-math.log2(high)) and params.long_term_goal_bits > 11
    assert "a lower bound" in sources["long_term_goal_bits"] and "0 of 10,000 samples" in sources["long_term_goal_bits"]
    # a lower bound on the bits is an upper bound on the prediction: the true P(deceptive) is at most this
    assert bias_predictions(params).set_index("class").loc["deceptive", "p_simplicity_only"] < 0.001


def test_the_source_and_condition_are_chosen_and_bad_tables_are_refused():
    two = pd.concat([_table({"internal": 10, "corrigible": 10, "deceptive": 10, "mixed": 9970}, condition="a"),
                     _table({"internal": 1000, "corrigible": 10, "deceptive": 10, "mixed": 8980}, condition="b"),
                     _table({"internal": 1, "corrigible": 1, "deceptive": 5000, "mixed": 4998}, source="naive", condition="a")])
    assert bias_params_from_counting(two)[0].objective_bits == pytest.approx(-math.log2(0.001))  # the first condition
    assert bias_params_from_counting(two, condition="b")[0].objective_bits == pytest.approx(-math.log2(0.1))
    assert bias_params_from_counting(two, source="naive")[0].long_term_goal_bits == pytest.approx(1.0)
    with pytest.raises(ValueError, match="counting source: 'sgd' is none of nngp, prior, naive"):
        bias_params_from_counting(two, source="sgd")
    with pytest.raises(ValueError, match="no condition 'c'"):
        bias_params_from_counting(two, condition="c")
    with pytest.raises(ValueError, match="no prior samples for condition 'a'"):
        bias_params_from_counting(two, source="prior")
    with pytest.raises(ValueError, match="not a counting table"):
        bias_params_from_counting(two.drop(columns="high"))


def test_theory_command_reads_the_lengths_from_a_counting_table(tmp_path, capsys):
    path = tmp_path / "counting.parquet"
    _table({"internal": 5000, "corrigible": 1000, "deceptive": 10, "mixed": 3990}).to_parquet(path)
    r = CliRunner().invoke(app, ["theory", "--counting", str(path), "--runs", "50", "--sensitivity-runs", "10", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    params = {p["name"]: p for p in out["parameters"]}
    assert params["objective_bits"]["value"] == pytest.approx(1.0) and params["objective_bits"]["source"].startswith("counting (base)")
    assert params["pointer_bits"]["source"].startswith("counting") and params["w_speed"]["source"] == "default"
    low = {r["class"]: r for r in out["low_path_dependence"]}
    assert low["internal"]["p"] > low["deceptive"]["p"]
    for args, message in ((["--counting", str(path), "--prior", "internal=0.1"], "--prior and --counting both set the description lengths"),
                          (["--counting", str(tmp_path / "nowhere.parquet")], "nowhere.parquet"),
                          (["--counting", str(path), "--counting-source", "sgd"], "'sgd' is not one of 'nngp', 'prior', 'naive'")):
        capsys.readouterr()
        code = run_cli(["theory", *args, "--runs", "10", "--sensitivity-runs", "5"])  # as the installed command runs: a usage error is one line too
        err = capsys.readouterr().err
        assert code == 2 and message in " ".join(err.split()) and len(err.strip().splitlines()) == 1, err


def test_api_reads_a_counting_folder_for_the_theory(tmp_path):
    raw = {"kind": "counting", "name": "c", "seeds": 1, "world": {"name": "bitworld"}, "model": {"depth": 1, "width": 8},
           "verdict": {"threshold": 0.55}, "counting": {"chains": 10, "steps": 8, "burn_in": 10, "naive_samples": 0}}
    table, _ = dl.run_counting(tmp_path / "c", raw, workers=1)
    params, sources = dl.theory_bias(tmp_path / "c")
    nngp = table[table.source == "nngp"].set_index("verdict")
    for cls, name in (("internal", "objective_bits"), ("corrigible", "pointer_bits"), ("deceptive", "long_term_goal_bits")):
        r = nngp.loc[cls]
        expect = -math.log2(r.p) if r["count"] else -math.log2(r.high)
        assert getattr(params, name) == pytest.approx(expect) and sources[name].startswith("counting (base)")


def test_report_reads_counting_and_prior_folders_and_samples_only_through_a_spec(tmp_path):
    from deceptionlab.sweep import Store
    from tests.conftest import tiny_spec_text

    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=2, steps=60))
    dl.run(spec, tmp_path / "res", progress=False, workers=1)
    raw = {"kind": "counting", "name": "c", "seeds": 1, "world": {"name": "bitworld"}, "model": {"depth": 2, "width": 16},
           "counting": {"chains": 10, "steps": 8, "burn_in": 10, "naive_samples": 200, "prior_samples": 200, "results": str(tmp_path / "res")}}
    table, diagnostics = dl.run_counting(tmp_path / "counting", raw, workers=1)
    # P_SGD from the results folder: both of its conditions pose the counting problem (they differ in a world-model head only)
    sgd = table[table.source == "sgd"]
    assert int(sgd.n.iloc[0]) == 4 and int(diagnostics.sgd_runs.iloc[0]) == 4 and sgd.p.sum() == pytest.approx(1.0)
    r = CliRunner().invoke(app, ["prior", "--world", "bitworld", "--arch", "16,16", "--samples", "400", "--out", str(tmp_path / "prior")])
    assert r.exit_code == 0, r.output
    html = tmp_path / "rep" / "report.html"
    r = CliRunner().invoke(app, ["report", str(tmp_path / "res"), "--counting", str(tmp_path / "counting"), "--prior", str(tmp_path / "prior"), "-o", str(html)])
    assert r.exit_code == 0, r.output
    text = html.read_text()
    assert "P_B(class | S): the NNGP of the model family" in text and "counting (base): " in text  # C5 from P_B, the theory's lengths measured
    assert f"read from {tmp_path / 'prior'}" in text and not (tmp_path / "rep" / "report_figures" / "prior_draws_20000").exists()  # read, not drawn
    assert (tmp_path / "rep" / "report_figures" / "counting.png").stat().st_size > 1000
    # sampling on the fly goes through a spec of kind "prior" into the report's folder first
    r = CliRunner().invoke(app, ["report", str(tmp_path / "res"), "--prior-samples", "300", "-o", str(html)])
    assert r.exit_code == 0, r.output
    assert Store(tmp_path / "rep" / "report_figures" / "prior_draws_300").kind() == "prior"
    assert dl.prior_results(tmp_path / "rep" / "report_figures" / "prior_draws_300")[1]["samples"] == 300
    for args, message in ((["--prior", str(tmp_path / "counting")], "--prior "), (["--counting", str(tmp_path / "prior")], "--counting ")):
        bad = CliRunner().invoke(app, ["report", str(tmp_path / "res"), *args, "-o", str(html)])
        assert bad.exit_code == 2 and message in bad.output and len(bad.output.strip().splitlines()) == 1, bad.output
