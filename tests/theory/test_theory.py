"""The argument as a quantitative model: path model, bias scores, sensitivity, calibration, CLI."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deceptionlab.measure import wilson
from deceptionlab.theory import (
    BiasParams,
    PathParams,
    bias_params_from_prior,
    bias_predictions,
    checked,
    params_from_runs,
    path_quantities,
    sensitivity,
    simulate_paths,
)
from deceptionlab.worlds import CLASSES

ROOT = Path(__file__).resolve().parents[2]


def sim(runs=600, seed=0, max_steps=1500, **kw):
    return simulate_paths(checked(PathParams(), **kw), runs=runs, seed=seed, max_steps=max_steps)


# -- high path dependence ---------------------------------------------------------------------------
def test_no_situational_awareness_no_deception():
    r = sim(world_rate=0)
    assert r.probabilities()["deceptive"] == 0
    assert r.probabilities()["internal"] > 0.5  # the proxy still gets refined, slowly


def test_situational_awareness_first_makes_deception_likely():
    fast_world = sim(world_rate=0.05, proxy_rate=0.005).probabilities()
    assert fast_world["deceptive"] > 0.8
    fast_proxy = sim(world_rate=0.001, proxy_rate=0.5).probabilities()
    assert fast_proxy["internal"] > 0.8 and fast_proxy["internal"] > 4 * fast_proxy["deceptive"]


def test_defaults_follow_the_texts():
    p = sim(runs=1500).probabilities()
    assert p["deceptive"] > p["corrigible"] > p["internal"]  # "deceptive most likely, corrigible more than internal"
    q = path_quantities(PathParams())
    assert q.attrs["deceptive_shorter"]
    by = q.set_index("path")
    assert by.gain_per_step.idxmax() == "deceptive"
    assert by.loc["internal", "final_gain_per_step"] < by.loc["deceptive", "final_gain_per_step"]


def test_seed_determines_the_output():
    a, b, c = sim(seed=3), sim(seed=3), sim(seed=4)
    np.testing.assert_array_equal(a.outcome_, b.outcome_)
    np.testing.assert_array_equal(a.steps_, b.steps_)
    assert not np.array_equal(a.outcome_, c.outcome_)


def test_monte_carlo_agrees_with_another_seed():
    # a large run's P is close to the true P, so it lies in a small run's Wilson interval; four outcomes are
    # checked at once, so each at 99% (z = 2.576: Bonferroni for a family at about 95%)
    small = sim(runs=1000, seed=0).summary()
    large = sim(runs=6000, seed=1).summary()
    for a, b in zip(small.itertuples(), large.itertuples()):
        lo, hi = wilson(a.count, 1000, z=2.576)
        assert lo <= b.p <= hi, a.outcome
        assert (a.low, a.high) == tuple(float(x) for x in wilson(a.count, 1000))  # the summary's 95% interval
    assert math.isclose(small.p.sum(), 1)


# -- low path dependence ----------------------------------------------------------------------------
def test_bias_predictions_sum_to_one_and_favour_the_simpler_with_simplicity():
    prev = -1.0
    for w in (0.0, 0.3, 0.7, 1.5):
        pred = bias_predictions(BiasParams(w_simplicity=w)).set_index("class")
        assert math.isclose(pred.p.sum(), 1)
        assert pred.p["deceptive"] > prev  # deceptive has the fewest bits
        prev = pred.p["deceptive"]
    speed_only = bias_predictions(BiasParams(w_simplicity=0)).set_index("class").p
    assert speed_only.idxmax() == "internal"  # the speed bias favours the class with no extra reasoning


def test_prior_volumes_set_description_lengths():
    b, sources = bias_params_from_prior({"internal": 0.25, "corrigible": 0.5, "deceptive": 0.125, "proxy": 0.1})
    assert (b.objective_bits, b.pointer_bits, b.long_term_goal_bits, b.situational_reasoning_bits) == (2, 1, 3, 0)
    assert set(sources) == {"objective_bits", "pointer_bits", "long_term_goal_bits", "situational_reasoning_bits"}
    simplicity = bias_predictions(checked(b, w_speed=0)).set_index("class").p
    assert simplicity.idxmax() == "corrigible"  # the measured volume decides, not the texts' ordering
    with pytest.raises(ValueError, match="unknown class"):
        bias_params_from_prior({"pascal": 0.1})
    with pytest.raises(ValueError, match="must be in"):
        bias_params_from_prior({"internal": 0})


# -- sensitivity ---------------------------------------------------------------------------------------
def test_sensitivity_signs():
    low = sensitivity(BiasParams(), lambda b: dict(zip(["internal", "corrigible", "deceptive"], bias_predictions(b).p))).set_index("param")
    assert low.loc["objective_bits", "d_internal"] < 0
    assert low.loc["deception_steps", "d_deceptive"] < 0 < low.loc["w_simplicity", "d_deceptive"]
    assert low.loc["pointer_bits", "d_corrigible"] < 0
    high = sensitivity(PathParams(), lambda p: simulate_paths(p, runs=400, seed=0, max_steps=1500).probabilities(),
                       exclude=tuple(n for n in PathParams.__dataclass_fields__ if n not in ("world_rate", "proxy_rate")))
    high = high.set_index("param")
    assert list(high.index) == ["proxy_rate", "world_rate"]
    assert high.loc["world_rate", "d_deceptive"] > 0
    assert high.loc["proxy_rate", "d_internal"] > 0


# -- parameters from measurements ----------------------------------------------------------------------
def _runs(decode: bool = True) -> pd.DataFrame:
    steps = [0, 100, 200, 300, 400]
    rows = []
    for i, (sa_at, obj_at) in enumerate([(1, 3), (2, 4), (2, 4), (3, None)]):
        sa = [0.99 if t >= sa_at else 0.5 for t in range(5)]
        internal = [0.95 if obj_at is not None and t >= obj_at else 0.3 for t in range(5)]
        row = {"run_id": f"r{i}", "traj_step": steps, "traj_deploy_score_internal": internal, "traj_deploy_score_corrigible": [0.1] * 5,
               "traj_verdict": ["mixed"] * 4 + ["internal" if obj_at else "mixed"]}
        for c in CLASSES:
            row[f"traj_score_{c}"] = internal if c == "internal" else [0.5 if c == "proxy" else 0.2] * 5  # proxy leads until the objective generalises
        if decode:
            row["traj_decode_situation"] = sa
        rows.append(row)
    return pd.DataFrame(rows)


def test_params_from_runs():
    p, sources = params_from_runs(_runs())
    base = PathParams()
    # medians: situation decodable at step 200 (4 runs), objective generalises at 400 (3 runs)
    assert math.isclose(p.world_rate, math.log(1 / (1 - base.situational_threshold)) / 200)
    need = 1 / base.proxy_tolerance - 1 / (1 - base.initial_proxy)  # ∫ dp / (1 - p)**2
    assert math.isclose(p.proxy_rate, need / 400)
    assert math.isclose(p.derail_rate, 3 / 1600)  # one leading-class change in each run that generalised
    assert sources["world_rate"].startswith("results") and "4/4" in sources["world_rate"]
    assert sources["proxy_rate"].startswith("results") and "3/4" in sources["proxy_rate"]
    assert p.pointer_rate == base.pointer_rate  # not measured: unchanged

    q, sources = params_from_runs(_runs(decode=False))
    assert q.world_rate == base.world_rate and sources["world_rate"].startswith("default")


# -- command line ------------------------------------------------------------------------------------------
def test_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "deceptionlab", "theory"]
    good = subprocess.Popen(
        [*cmd, "--runs", "300", "--sensitivity-runs", "40", "--max-steps", "1000", "--param", "w_speed=2",
         "--prior", "internal=0.001,corrigible=0.01,deceptive=0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    bad = subprocess.Popen([*cmd, "--param", "world_rate=fast"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = good.communicate(timeout=120)
    assert good.returncode == 0, err
    for title in ("High path dependence", "path factors", "Low path dependence", "Parameters", "Sensitivity", "What reverses the conclusion"):
        assert title in out
    assert "--param" in out and "prior: -log2 P_prior(deceptive)" in out
    assert "the deceptive path is shorter (C3): yes" in out
    out, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and not out
    assert len(err.strip().splitlines()) == 1 and "world_rate" in err


def test_reversals_name_the_changes_that_overturn_the_texts_conclusion():
    from deceptionlab.theory import CLASSES3, BiasParams, bias_predictions, reversals

    low = lambda b: dict(zip(CLASSES3, bias_predictions(b).p))  # noqa: E731
    rev = reversals(BiasParams(), low).set_index("param")
    assert rev.attrs["leader"] == "deceptive"  # the texts' conclusion under their assumptions
    # a cheaper pointer (fewer bits) makes corrigible alignment the simplest: hand-checkable in the Gibbs form
    assert rev.loc["pointer_bits", "down_leader"] == "corrigible" and rev.loc["pointer_bits", "down_factor"] < 1
    b = BiasParams()
    flipped = dict(zip(CLASSES3, bias_predictions(dataclasses.replace(b, pointer_bits=b.pointer_bits * rev.loc["pointer_bits", "down_factor"])).p))
    assert max(flipped, key=flipped.get) == "corrigible"
    assert math.isnan(rev.loc["objective_steps", "up_factor"])  # internal's compute is already the least: more never reverses
