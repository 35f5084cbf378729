"""The theory fitted on some conditions and tested on held-out ones (docs/theory.md, "Fitting"): the fit
recovers parameters from data the model itself made, the null beats a theory that is wrong about what
matters (so the verdict can be `falsified`), the right theory beats the null (`supported`), and the
command line prints the verdict and refuses bad filters with one line."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import deceptionlab
from deceptionlab.theory import FitError, fit_theory
from deceptionlab.theory.fit import fit_conditions, fit_model, parse_filter
from deceptionlab.theory.lab_units import Context, predictions, simulate_verdicts
from tests.conftest import tiny_spec_text

CTX = Context(proxy_rate=0.004)


def _conds(sa=(np.inf, 100, 400, 1600), p0=(0.4, 0.6), og=(0.0, 1.0), distance=None) -> pd.DataFrame:
    rows = []
    for i, (s, p, o) in enumerate(itertools.product(sa, p0, og)):
        d = distance[i % len(distance)] if distance is not None else 4.0
        rows.append({"condition": f"c{i}", "runs": 0, "sa_steps": float(s), "initial_proxy": p, "own_goal": o, "distance": float(d), "train_steps": 1500.0})
    return pd.DataFrame(rows)


PATH_TRUTH = {"pointer_rate": 0.003, "rate_spread": 0.8, "long_term_goal": 0.4, "lapse": 0.05}
NULL_TRUTH = {"logit_corrigible": -1.0, "logit_proxy": -2.0, "logit_mixed": 0.5, "distance_scale": 5.0, "lapse": 0.02}


def test_the_fit_recovers_the_parameters_of_data_the_path_model_made():
    conds = _conds()
    hits, total = 0, 0
    for seed in range(3):
        post = fit_model("path", simulate_verdicts("path", conds, PATH_TRUTH, 200, seed, CTX), CTX, seed=seed, starts=2, draws=200)
        tab = post.table().set_index("param")
        for name, truth in PATH_TRUTH.items():
            row = tab.loc[name]
            assert row.low < row.value < row.high
            assert abs(row.value - truth) < 0.2 * truth, (seed, name, row.value)  # close, not only inside a wide interval
            hits += bool(row.low <= truth <= row.high)
            total += 1
    assert hits >= total - 2, f"truth inside its 95% interval in only {hits} of {total} fits"


def test_the_fit_recovers_the_null():
    conds = _conds(sa=(np.inf, 100), distance=(0, 1, 4, 16))
    post = fit_model("null", simulate_verdicts("null", conds, NULL_TRUTH, 300, 0, CTX), CTX, seed=0, starts=2, draws=200)
    tab = post.table().set_index("param")
    for name, truth in NULL_TRUTH.items():
        assert tab.loc[name, "low"] <= truth <= tab.loc[name, "high"], (name, tab.loc[name].to_dict())


def test_a_parameter_the_fit_conditions_do_not_pin_down_keeps_its_prior_spread():
    # no condition lets the situation be known: long_term_goal is not identified, and its interval spans most of [0, 1]
    conds = _conds(sa=(np.inf,))
    post = fit_model("path", simulate_verdicts("path", conds, PATH_TRUTH, 200, 0, CTX), CTX, seed=0, starts=2, draws=300)
    row = post.table().set_index("param").loc["long_term_goal"]
    assert row.low < 0.1 and row.high > 0.9


def test_the_null_beats_a_theory_wrong_about_what_matters_so_it_is_falsified():
    # data from the null: deceptive-looking runs grow with the cue distance; the path model reads the
    # situation as never known (sa_steps inf), so it cannot follow the distance
    conds = _conds(sa=(np.inf,), og=(1.0,), distance=(1, 2, 4, 8, 16, 32))
    conds = pd.concat([conds.assign(distance=d, condition=f"d{d}") for d in (1.0, 2.0, 4.0, 8.0, 16.0)], ignore_index=True)
    data = simulate_verdicts("null", conds, NULL_TRUTH, 150, 1, CTX)
    fitc, predc = data[data.distance != 4.0], data[data.distance == 4.0]
    res = fit_conditions(fitc, predc, CTX, seed=0, draws=100, starts=2)
    v = res.verdicts.set_index("theory")
    assert v.loc["path", "verdict"] == "falsified" and v.loc["path", "high"] < 0
    assert res.verdict == "falsified"


def test_the_theory_is_supported_where_it_made_the_data():
    # data from the path model, where the time to know the situation varies and the cue distance does not
    conds = _conds(sa=(np.inf, 50, 200, 800), p0=(0.5,), og=(0.0,))
    data = simulate_verdicts("path", conds, PATH_TRUTH, 200, 2, CTX)
    fitc, predc = data[data.sa_steps != 200], data[data.sa_steps == 200]
    res = fit_conditions(fitc, predc, CTX, seed=0, draws=100, starts=2)
    assert res.verdict == "supported", res.verdicts
    pr = res.predictions
    dec = pr[(pr.model.str.startswith("path model")) & (pr.quantity == "P(deceptive)")].iloc[0]
    truth = predictions("path", predc, PATH_TRUTH, CTX)["verdict"][0, 2]
    assert dec.predicted_low <= truth <= dec.predicted_high  # the held-out prediction's interval covers the truth


def test_filters():
    assert parse_filter("cue_copies=1,pretraining=own goal") == [("cue_copies", "1"), ("pretraining", "own goal")]
    with pytest.raises(FitError, match="expected axis=value"):
        parse_filter("cue_copies")


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    spec = root / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=6, steps=120))
    deceptionlab.run(spec, root / "results")
    return root / "results"


@pytest.fixture(scope="module")
def tiny_fit(tiny_results):
    runs = deceptionlab.load(tiny_results)
    return runs, fit_theory(runs, ["situational_awareness=off"], ["situational_awareness=cue"], ["situational_awareness"], draws=50)


def test_fit_theory_on_a_results_folder(tiny_fit):
    runs, res = tiny_fit
    assert set(res.conditions.role) == {"fit", "predict"} and res.verdict in {"supported", "falsified", "inconclusive"}
    scores = res.scores[res.scores.role == "predict"]
    assert set(scores.model) == {"path", "bias", "null", "path (texts)", "bias (texts)"} and (scores.runs == 6).all()
    assert (scores.brier >= 0).all() and (scores.log_lik < 0).all()
    claims = res.claims.set_index("claim")
    assert {"C1", "C4", "C10"} <= set(claims.index)
    assert set(claims.verdict) <= {"supported", "contradicted", "inconclusive", "not testable here"}
    if res.conditions.distance.nunique() == 1:  # no reduced-but-non-zero cue: C10 is not judged
        assert claims.loc["C10", "verdict"] == "not testable here"
    with pytest.raises(FitError, match="both --fit and --predict"):
        fit_theory(runs, ["situational_awareness=off"], ["situational_awareness=off"], ["situational_awareness"])


def test_cli_prints_the_verdict_and_refuses_a_bad_filter(tiny_results):
    from typer.testing import CliRunner

    from deceptionlab.cli import app

    runner = CliRunner()
    fit = ["theory", "fit", str(tiny_results), "--fit", "situational_awareness=off", "--predict", "situational_awareness=cue", "--draws", "40"]
    good = runner.invoke(app, fit, env={"COLUMNS": "200"})
    assert good.exit_code == 0, good.output
    assert "Free parameters" in good.stdout and "Held out" in good.stdout
    last = good.stdout.strip().splitlines()[-1]
    assert last.startswith("verdict (path model against the null, held out):") and last.split()[-1] in {"supported", "falsified", "inconclusive"}
    csv = runner.invoke(app, [*fit, "--format", "csv", "--table", "verdicts"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("theory,held_out_runs,diff_log_lik")
    for args, word in ((("--fit", "nosuch=1", "--predict", "situational_awareness=cue"), "nosuch"),
                       (("--fit", "situational_awareness=sideways", "--predict", "situational_awareness=cue"), "sideways"),
                       (("--fit", "situational_awareness", "--predict", "situational_awareness=cue"), "axis=value"),
                       (("--fit", "situational_awareness=off"), "--predict")):
        bad = runner.invoke(app, ["theory", "fit", str(tiny_results), *args])
        assert bad.exit_code == 2 and not bad.stdout
        assert len(bad.stderr.strip().splitlines()) == 1 and word in bad.stderr, bad.stderr



def test_the_report_renders_a_fit_it_is_given(tiny_fit, tmp_path):
    from deceptionlab.report.html import _theory_fit_section

    res = tiny_fit[1]
    figs = []
    html = "\n".join(_theory_fit_section(res.tables(), tmp_path, figs))
    assert f"path model is <b>{res.verdict}</b>" in html and "situational_awareness=cue" in html
    assert len(figs) == 1 and figs[0].png.exists() and figs[0].png.with_suffix(".svg").exists()


def test_the_race_matches_a_monte_carlo_of_its_log_normal_times():
    from deceptionlab.theory.lab_units import _race

    tau = np.array([[300.0, 900.0, 150.0], [50.0, np.inf, 2000.0]])
    horizon = np.array([1500.0, 1000.0])
    got = _race(tau, 1.2, horizon)
    rng = np.random.default_rng(0)
    for c in range(2):
        with np.errstate(invalid="ignore"):
            t = tau[c] * np.exp(1.2 * rng.standard_normal((200_000, 3)))  # inf stays inf: never
        first, when = t.argmin(1), t.min(1)
        mc = [np.mean((first == i) & (when < horizon[c])) for i in range(3)] + [np.mean(when >= horizon[c])]
        assert np.allclose(got[c], mc, atol=0.01), (c, got[c], mc)
