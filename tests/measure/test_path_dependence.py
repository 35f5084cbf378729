"""Path dependence, gains and loss barriers on constructed cases where the answer is known, and the
early interventions on real training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deceptionlab.core.scoring import pack_decisions, unpack_decisions
from deceptionlab.measure import class_paths, gain_curves, path_dependence, returns_summary, sensitivity
from deceptionlab.measure.barriers import barrier_heights, unflatten
from deceptionlab.measure.path_dependence import adjusted_rand, clusters, decision_matrix, disagreement, seed_shares
from deceptionlab.models import MLPEnsemble
from deceptionlab.train import HeadData, Phase, train, trainer
from deceptionlab.worlds import CLASSES

N_PROBE = 20
STEPS = [0, 100, 200]


def _blob(bits) -> bytes:
    x = torch.tensor([1.0 if b else -1.0 for b in bits]).view(1, -1)
    return pack_decisions(x)[0].numpy().tobytes()


def _runs(functions: list[list[int]], verdicts: list[str], scores=None, seeds=None, data_seeds=None, cond="x") -> pd.DataFrame:
    """Runs whose final (and every checkpoint's) function and verdict are given."""
    rows = []
    for k, (f, v) in enumerate(zip(functions, verdicts)):
        s = scores[k] if scores is not None else [0.95 if c == v else 0.5 for c in CLASSES]
        rows.append({
            "run_id": f"{cond}{k}", "cond": cond, "seed": seeds[k] if seeds else k, "data_seed": data_seeds[k] if data_seeds else k,
            "verdict": v, "n_decisions": N_PROBE, "decisions": _blob(f), "traj_decisions": [_blob(f)] * 3, "traj_step": STEPS,
            "traj_verdict": [v] * 3, **{f"score_{c}": s[i] for i, c in enumerate(CLASSES)},
            **{f"traj_score_{c}": [s[i]] * 3 for i, c in enumerate(CLASSES)},
        })
    return pd.DataFrame(rows)


ONES, ZEROS = [1] * N_PROBE, [0] * N_PROBE


def test_decisions_pack_and_unpack_exactly():
    x = torch.tensor([[1, -1, -1, 1, 1, 1, -1, 1, -1, -1, 1], [-1] * 11], dtype=torch.float32)
    packed = pack_decisions(x)
    assert packed.shape == (2, 2) and packed[0, 0].item() == 0b10011101
    back = unpack_decisions([row.numpy().tobytes() for row in packed], 11)
    np.testing.assert_array_equal(back, (x > 0).numpy())


def test_disagreement_and_clusters_on_known_functions():
    half = [1] * 10 + [0] * 10
    near = [1] * 11 + [0] * 9  # one input from `half`: 5% apart
    d = disagreement(decision_matrix([_blob(f) for f in (ONES, half, near, ZEROS)], N_PROBE))
    np.testing.assert_allclose(d[0], [0, 0.5, 0.45, 1])
    np.testing.assert_allclose(d, d.T)
    lab = clusters(d)
    assert lab[1] == lab[2] == 0  # within the 5% cut, and the largest cluster comes first
    assert lab[0] != lab[3] and set(lab.tolist()) == {0, 1, 2}


def test_adjusted_rand_index():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert adjusted_rand(a, a) == 1.0
    assert adjusted_rand(a, np.array([5, 5, 3, 3, 4, 4])) == pytest.approx(1.0)  # label names do not matter
    # hand-computed: a vs [0,0,0,1,1,1]: index 2, rows 3, cols 6, total 15 -> (2 - 1.2) / (4.5 - 1.2)
    assert adjusted_rand(a, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(0.8 / 3.3)


def test_identical_runs_have_zero_variance_one_cluster_and_low_path_dependence():
    runs = _runs([ONES] * 12, ["internal"] * 12)
    row = path_dependence(runs, ["cond"]).iloc[0]
    assert row.verdict_entropy == 0 and row.score_variance < 1e-12 and row.clusters == 1 and row.mean_disagreement == 0
    assert row.ari_mid == 1.0 and row.predict_mid == 1.0 and row.regime == "low"


def test_a_lottery_between_two_functions_is_high_path_dependence():
    runs = _runs([ONES] * 6 + [ZEROS] * 6, ["internal"] * 6 + ["proxy"] * 6)
    row = path_dependence(runs, ["cond"]).iloc[0]
    assert row.verdict_entropy == pytest.approx(1.0) and row.clusters == 2 and row.major_clusters == 2
    assert row.largest_cluster == 0.5 and row.regime == "high"
    assert path_dependence(runs.iloc[:6], ["cond"]).regime.iloc[0] == "undetermined"  # 6 runs: too few


def test_data_order_share_when_only_the_data_order_matters():
    seeds = [s for s in range(3) for _ in range(4)]
    dseeds = [d for _ in range(3) for d in range(4)]
    scores = [[0.5 + 0.1 * d, 0.5, 0.5, 0.5] for d in dseeds]  # the internal score depends on the data seed only
    runs = _runs([ONES] * 12, ["mixed"] * 12, scores=scores, seeds=seeds, data_seeds=dseeds)
    sh = seed_shares(runs)
    assert sh["data_share"] == pytest.approx(1.0) and sh["init_share"] == pytest.approx(0.0) and sh["interaction_share"] == pytest.approx(0.0)
    assert sh["init_share_chance"] == pytest.approx(2 / 11)
    assert np.isnan(seed_shares(runs.iloc[:11])["init_share"])  # not a full grid: no decomposition


def test_sensitivity_pairs_runs_by_seeds():
    base = _runs([ONES] * 10, ["internal"] * 10, cond="a").assign(lr="0.001")
    changed = _runs([ONES] * 7 + [ZEROS] * 3, ["internal"] * 7 + ["proxy"] * 3, cond="b").assign(lr="0.0012")
    s = sensitivity(pd.concat([base, changed]), ["lr"]).iloc[0]
    assert s.pairs == 10 and s.p_changed == pytest.approx(0.3) and s.low < 0.3 < s.high
    assert s.mean_disagreement == pytest.approx(0.3) and s.tv == pytest.approx(0.3) and s.p_differ_unrelated == 0


def test_gains_and_returns_on_a_constructed_loss_curve():
    steps = [0, 100, 200, 300, 400]
    runs = pd.DataFrame([{
        "run_id": "r", "cond": "x", "traj_step": steps, "traj_phase": ["p"] * 5,
        "traj_loss_policy": [np.nan, 1.0, 0.5, 0.1, 0.0], "traj_loss_overseer_model": [np.nan, 1.0, 0.9, 0.8, 0.6],
    }])
    g = gain_curves(runs, ["cond"]).set_index(["head", "step"])
    assert g.loc[("policy", 200), "gain_per_step"] == pytest.approx(0.005)
    assert g.loc[("overseer_model", 400), "gain_per_step"] == pytest.approx(0.002)
    r = returns_summary(runs, ["cond"]).set_index("head")
    assert r.loc["policy", "steps_to_90pct"] == 300  # 0.9 of its 1.0 drop made by step 300
    assert r.loc["overseer_model", "steps_to_90pct"] == 400  # the world model's returns hold out longer
    assert r.loc["policy", "first_gain_per_step"] == pytest.approx(0.005)


def test_class_paths_measure_path_length_per_verdict():
    rows = []
    for k, (verdicts, acc) in enumerate([(["mixed", "internal", "internal"], [0.5, 1.0, 1.0]), (["mixed", "mixed", "proxy"], [0.5, 0.6, 0.7])]):
        rows.append({"run_id": str(k), "cond": "x", "verdict": verdicts[-1], "traj_step": STEPS, "traj_verdict": verdicts,
                     "traj_train_accuracy": acc, "traj_deploy_score_internal": [0.5] * 3, "traj_deploy_score_corrigible": [0.5] * 3,
                     **{f"traj_score_{c}": [0.5, 0.6, 0.7] if c == "internal" else [0.4] * 3 for c in CLASSES}})
    cp = class_paths(pd.DataFrame(rows), ["cond"]).set_index("verdict")
    assert cp.loc["internal", "path_length"] == 100 and cp.loc["internal", "accuracy_gain_per_step"] == pytest.approx(0.005)
    assert cp.loc["proxy", "path_length"] == 200 and cp.loc["proxy", "accuracy_gain_per_step"] == pytest.approx(0.001)


def test_loss_barrier_matches_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    a = MLPEnsemble.init(5, 1, 4, 2, [torch.Generator().manual_seed(s) for s in (1, 2)])
    b = MLPEnsemble.init(5, 1, 4, 2, [torch.Generator().manual_seed(s) for s in (3, 4)])
    x = torch.randn(30, 5, generator=g)
    y = torch.where(torch.randn(30, generator=g) > 0, 1.0, -1.0)
    got = barrier_heights(a.params, b.params, x, y, alphas=11)
    for k in range(2):
        losses = []
        for t in torch.linspace(0, 1, 11):
            m = MLPEnsemble([((1 - t) * p[k : k + 1] + t * q[k : k + 1]) for p, q in zip(a.params, b.params)])
            losses.append(torch.nn.functional.softplus(-y * m.logits(x)[0, :, 0]).mean())
        line = [(1 - t) * losses[0] + t * losses[-1] for t in torch.linspace(0, 1, 11)]
        assert got[k].item() == pytest.approx(max(0.0, max(float(l - s) for l, s in zip(losses, line))), abs=1e-5)
    assert barrier_heights(a.params, a.params, x, y).abs().max().item() < 1e-6  # a run with itself: no barrier


def test_stored_weights_round_trip():
    m = MLPEnsemble.init(12, 2, 8, 3, [torch.Generator().manual_seed(0)])
    blob = torch.cat([p.reshape(1, -1) for p in m.params], 1)[0].numpy().tobytes()
    for p, q in zip(unflatten(blob, 12, 2, 8, 3), m.params):
        torch.testing.assert_close(p, q[0])
    with pytest.raises(ValueError, match="needs"):
        unflatten(blob, 12, 2, 9, 3)


def test_early_data_swap_changes_only_the_first_batches(monkeypatch):
    seen = []
    real = trainer._step
    monkeypatch.setattr(trainer, "_step", lambda model, opt, xs, ys, idx, *a: (seen.append(idx.clone()), real(model, opt, xs, ys, idx, *a))[1])
    x = torch.randn(50, 4)
    y = torch.where(x[:, 0] > 0, 1.0, -1.0)

    def batches(early: int) -> list[torch.Tensor]:
        seen.clear()
        model = MLPEnsemble.init(4, 1, 8, 1, [torch.Generator().manual_seed(0)])
        train(model, [Phase("p", 150, [HeadData(0, x, y, 1.0)])], optimizer="sgd", lr=0.1, batch_size=8,
              data_generators=[torch.Generator().manual_seed(1)], log_every=1000, evaluate=lambda m: {},
              early_steps=early, early_generators=[torch.Generator().manual_seed(2)])
        return list(seen)

    plain, swapped = batches(0), batches(70)  # 70 crosses the 64-step block boundary
    assert len(plain) == len(swapped) == 150
    assert sum(not torch.equal(p, s) for p, s in zip(plain[:70], swapped[:70])) >= 65
    assert all(torch.equal(p, s) for p, s in zip(plain[70:], swapped[70:]))


def test_weight_noise_has_the_asked_scale():
    from deceptionlab.families.mlp import perturb

    gens = [torch.Generator().manual_seed(s) for s in range(64)]
    m = MLPEnsemble.init(12, 1, 256, 1, gens)
    before = [p.clone() for p in m.params]
    perturb(m, [torch.Generator().manual_seed(100 + s) for s in range(64)], 0.1)
    noise = (m.params[2] - before[2]).std().item()  # the readout: fan-in 256, init std 1/sqrt(3 * 256)
    assert noise == pytest.approx(0.1 / np.sqrt(3 * 256), rel=0.05)
    assert (m.params[0] - before[0]).std().item() == pytest.approx(0.1 / np.sqrt(3 * 12), rel=0.05)


PATHS_SPEC = """
name = "paths-tiny"
seeds = [0, 1]
data_seeds = [5, 6]
log_every = 40
save_weights = true

[world]
knobs = { situational_awareness = "interaction", overseer_model = true }

[model]
width = 16

[optimizer]
lr = 0.01
batch_size = 16

[[phases]]
name = "world_model"
steps = 80
heads.situational_awareness = {}
heads.overseer_model = {}

[[phases]]
name = "training"
steps = 120
heads.policy = {}
heads.situational_awareness = {}

[sweep]
lr = { path = "optimizer.lr", values = [0.01, 0.012] }
early = { path = "early", values = [{}, { data_swap_steps = 20 }], labels = ["none", "swap-20"] }
"""


def test_paths_end_to_end_through_the_cli(tmp_path):
    import subprocess
    import sys

    spec = tmp_path / "paths.toml"
    spec.write_text(PATHS_SPEC)
    cli = [sys.executable, "-m", "deceptionlab"]
    run = subprocess.run([*cli, "run", spec, "--out", tmp_path / "r", "--no-show"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    res = subprocess.run([*cli, "paths", tmp_path / "r", "--out", tmp_path / "p"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    for title in ("C1 path events", "C2 returns", "C3 path per final verdict", "C8 path dependence", "regime rule", "(B, F) sensitivity", "Loss barriers"):
        assert title in res.stdout, title
    pd_table = pd.read_csv(tmp_path / "p" / "path_dependence.csv")
    assert len(pd_table) == 4 and set(pd_table.regime) == {"undetermined"}  # 4 runs per condition: too few to call
    # init and data-order seeds are crossed: both shares are measured, and data order explains some variance
    assert (pd_table.data_share > 0).all() and (pd_table.init_share >= 0).all()
    assert ((pd_table.init_share + pd_table.data_share) <= 1 + 1e-9).all()
    sens = pd.read_csv(tmp_path / "p" / "sensitivity.csv")
    assert set(sens.axis) == {"lr", "early"} and (sens.pairs == 4).all()
    barriers = pd.read_csv(tmp_path / "p" / "barriers.csv")
    assert len(barriers) >= 4 and (barriers["mean"] >= 0).all()
    returns = pd.read_csv(tmp_path / "p" / "returns.csv")
    assert {"world_model", "training"} <= set(returns.phase) and (returns.total_drop > 0).all()
    for fig in ("trajectories", "event_times", "disagreement", "gains", "stability"):
        for ext in ("png", "svg"):
            assert (tmp_path / "p" / "figures" / f"{fig}.{ext}").stat().st_size > 10_000, (fig, ext)
