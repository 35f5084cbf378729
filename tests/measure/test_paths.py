"""Path events on constructed trajectories where the answer is known, and on a real results folder."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from deceptionlab.measure import path_events, path_summary, wilson

STEPS = [0, 100, 200, 300]


def _run(run_id, decode, internal, corrigible, verdicts, leading):
    scores = {c: [0.5] * 4 for c in ("internal", "corrigible", "deceptive", "proxy")}
    for t, c in enumerate(leading):
        scores[c][t] = 0.99
    return {
        "run_id": run_id, "cond": "x", "traj_step": STEPS, "traj_decode_situation": decode,
        "traj_deploy_score_internal": internal, "traj_deploy_score_corrigible": corrigible, "traj_verdict": verdicts,
        **{f"traj_score_{c}": v for c, v in scores.items()},
    }


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame([
        _run("a", [0.5, 0.97, 1, 1], [0.4, 0.5, 0.6, 0.95], [0.1] * 4, ["unfit", "proxy", "internal", "internal"],
             ["proxy", "proxy", "internal", "internal"]),
        _run("b", [0.5] * 4, [0.1] * 4, [0.92, 0.9, 0.95, 0.97], ["corrigible"] * 4, ["corrigible"] * 4),
        _run("c", [0.5, 0.6, 0.96, 0.99], [0.0, 0.0, 0.9, 0.9], [0.0] * 4, ["mixed", "internal", "mixed", "internal"],
             ["proxy", "internal", "deceptive", "internal"]),
        _run("d", [0.5] * 4, [0.2] * 4, [0.2] * 4, ["mixed"] * 4, ["deceptive"] * 4),
    ])


def test_events_of_constructed_paths(runs):
    ev = path_events(runs).set_index("run_id")
    assert ev.loc["a", "sa_step"] == 100 and ev.loc["a", "objective_step"] == 300 and ev.loc["a", "first"] == "situation"
    assert math.isnan(ev.loc["b", "sa_step"]) and ev.loc["b", "objective_step"] == 0 and ev.loc["b", "first"] == "objective"
    assert ev.loc["c", "first"] == "same checkpoint" and ev.loc["c", "sa_step"] == 200
    assert ev.loc["d", "first"] == "neither" and math.isnan(ev.loc["d", "objective_step"])
    assert ev.loc["a", "verdict_step"] == 200  # internal from step 200 to the end
    assert ev.loc["b", "verdict_step"] == 0
    assert ev.loc["c", "verdict_step"] == 300  # internal at the end only: it left once
    assert ev.derailments.to_dict() == {"a": 1, "b": 0, "c": 3, "d": 0}


def test_summary_counts_and_interval(runs):
    s = path_summary(runs, by=["cond"]).iloc[0]
    # run d: neither event, so it says nothing about the order: 1 of the 3 others knew its situation first
    assert s.n == 4 and s.n_events == 3 and s.p_situation_first == pytest.approx(1 / 3)
    lo, hi = wilson(1, 3)
    assert (s.low, s.high) == (pytest.approx(float(lo)), pytest.approx(float(hi)))
    assert s.median_objective_step == 200  # of 300, 0, 200 (run d never)
    assert s.p_objective_never == 0.25
    assert s.mean_derailments == 1.0
    stricter = path_summary(runs, by=["cond"], situation_threshold=0.98).iloc[0]
    assert stricter.median_sa_step == 250  # at 0.98: run a from step 200 (1.0), run c from 300 (0.99)
