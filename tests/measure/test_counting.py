"""The counting measurement (docs/counting.md): the NNGP kernel against wide random networks, the
effective sample size, the sign-conditioned sampler against known orthant probabilities, elliptical
slice against rejection on a reduced bitworld (few training rows), the finite-width network prior
against the NNGP at width 512, the verdict function against `deception.derive`, and the CLI's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deceptionlab.judge.deception import derive
from deceptionlab.measure.counting import (
    Conditional,
    LayerVariances,
    Problem,
    effective_sample_size,
    elliptical_slice,
    judge_signs,
    naive_classes,
    nngp_kernel,
    rejection,
)
from deceptionlab.measure.counting.classes import chain_ess
from deceptionlab.measure.counting.kernel import relu_expectation
from deceptionlab.measure.counting.sampler import one_thread
from deceptionlab.measure.prior_volume import random_ensemble
from deceptionlab.worlds import make_world
from tests.conftest import cli


@pytest.fixture(scope="module")
def world():
    return make_world("bitworld", {})


def _wide_logits(x: torch.Tensor, depth: int, width: int, draws: int, seed: int) -> torch.Tensor:
    """Readout logits of `draws` random MLPs of the lab's init on x: (draws, M)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    with one_thread():
        for _ in range(0, draws, 500):
            out.append(random_ensemble(x.shape[1], depth, width, 1, 500, g).logits(x)[..., 0])
    return torch.cat(out)


def test_arc_cosine_expectation_known_values():
    k = np.array([[2.0, 0.0], [0.0, 3.0]])
    e = relu_expectation(k)
    assert e[0, 0] == pytest.approx(1.0)  # E[relu(u)^2] = Var/2
    assert e[0, 1] == pytest.approx(math.sqrt(6) / (2 * math.pi))  # orthogonal: sqrt(k11 k22) / (2 pi)
    same = relu_expectation(np.full((2, 2), 2.0))
    assert same[0, 1] == pytest.approx(1.0)  # perfectly correlated: as the diagonal


def test_kernel_matches_wide_random_networks(world):
    x = torch.cat([c.x[:2] for c in world.probe_cells[::2]])  # 6 distinct inputs from different cells
    width, draws = 1024, 300
    with one_thread():
        h = random_ensemble(x.shape[1], 2, width, 1, draws, torch.Generator().manual_seed(3)).trunk(x).double()  # (draws, 6, width)
    # E[f f' | last hidden layer] over the readout, exactly: Var(b) + Var(w) sum_i h_i h_i', both 1/(3 width);
    # averaging that over draws has far less noise than averaging f f' itself
    per_draw = (1 + h @ h.transpose(1, 2)) / (3 * width)
    mc, se = per_draw.mean(0).numpy(), (per_draw.std(0) / math.sqrt(draws)).numpy()
    k = nngp_kernel(x.numpy(), LayerVariances.torch_default(x.shape[1], 2, width))
    # 2%: the first layer's preactivations are sums of 12 uniforms, not Gaussian, at any width
    assert (np.abs(mc - k) < 4 * se + 0.02 * k.diagonal().max()).all(), np.abs(mc - k) / k
    wrong = nngp_kernel(x.numpy(), LayerVariances.scaled(x.shape[1], 2, width, 1.5))  # a weight variance 1.5x too large
    assert not (np.abs(mc - wrong) < 4 * se + 0.02 * k.diagonal().max()).all()


def test_ess_of_iid_and_ar1():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal((50, 400))
    assert effective_sample_size(iid) == pytest.approx(iid.size, rel=0.15)
    phi = 0.8  # AR(1): tau = (1 + phi) / (1 - phi) = 9
    e = rng.standard_normal((50, 400))
    ar = np.zeros_like(e)
    for t in range(1, e.shape[1]):
        ar[:, t] = phi * ar[:, t - 1] + e[:, t]
    assert effective_sample_size(ar) == pytest.approx(ar.size / 9, rel=0.25)
    assert math.isnan(effective_sample_size(np.ones((4, 10))))


def test_sampler_reproduces_a_known_orthant_probability():
    # latents 0, 1 conditioned positive, latent 2 free: P(f2 > 0 | f0, f1 > 0) = P3 / P2, with the orthant
    # probabilities P2 = 1/4 + asin(r01) / (2 pi), P3 = 1/8 + (asin r01 + asin r02 + asin r12) / (4 pi)
    r = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.5], [-0.3, 0.5, 1.0]])
    p2 = 0.25 + math.asin(r[0, 1]) / (2 * math.pi)
    p3 = 0.125 + (math.asin(r[0, 1]) + math.asin(r[0, 2]) + math.asin(r[1, 2])) / (4 * math.pi)
    cond = Conditional.of(r, np.array([0, 1]), np.array([1.0, 1.0]), jitter=1e-9)
    with one_thread():
        run = elliptical_slice(cond, chains=400, steps=100, burn_in=20, seed=1)
    s = (run.signs[:, 2] > 0).double().numpy().reshape(400, 100)
    assert (run.signs[:, :2] > 0).all()
    ess = effective_sample_size(s)
    assert 1_000 < ess <= s.size
    se = math.sqrt(p3 / p2 * (1 - p3 / p2) / ess)
    assert abs(s.mean() - p3 / p2) < 4 * se
    # and rejection from the prior, the same posterior
    with one_thread():
        acc, _ = rejection(cond, 40_000, seed=2)
    assert abs(len(acc) / 40_000 - p2) < 0.01
    assert abs((acc[:, 2] > 0).double().mean().item() - p3 / p2) < 0.015


def test_judging_signs_is_derives_verdict(world):
    problem = Problem.of(world)
    rng = np.random.default_rng(0)
    signs = torch.from_numpy(np.where(rng.random((40, len(problem.x))) < 0.5, 1.0, -1.0).astype(np.float32))
    # plant each class template: the verdicts must then cover internal, corrigible, deceptive, proxy
    for i, c in enumerate(("internal", "corrigible", "deceptive", "proxy")):
        signs[i, problem.probe] = torch.from_numpy(problem.judge.templates[:, i].astype(np.float32))
    ours = judge_signs(problem, signs)
    codes = signs[:, problem.probe].double().numpy()
    theirs = derive(problem.judge, codes[:, None, :], np.ones((len(codes), 1)), 0.9, 0.95)
    assert ours.verdict.tolist() == theirs["verdict"]
    assert ours.verdict[:4].tolist() == ["internal", "corrigible", "deceptive", "proxy"]
    assert np.allclose(ours.p_deceptive, theirs["p_deceptive"])


def _cell_means(problem: Problem, signs: torch.Tensor) -> np.ndarray:
    codes = signs[:, problem.probe].numpy()
    return np.stack([codes[:, problem.judge.member == c].mean(1) for c in range(problem.judge.n_cells)], 1)  # (N, cells)


def test_elliptical_slice_agrees_with_rejection_on_a_reduced_world(world):
    """Bitworld conditioned on 4 training rows, where rejection from the NNGP prior accepts: both sample
    the same GP posterior, so cell-mean decisions and verdict shares agree within their intervals."""
    problem = Problem.of(world, fit_rows=4, seed=0)
    v = LayerVariances.torch_default(world.input_dim, 2, 64)
    cond = problem.conditional(v)
    with one_thread():
        run = elliptical_slice(cond, chains=300, steps=40, burn_in=20, seed=5)
        acc, draws = rejection(cond, 20_000, seed=6)
    assert len(acc) > 500  # rejection does accept here
    a, b = _cell_means(problem, run.signs), _cell_means(problem, acc)
    for c in range(a.shape[1]):
        ess = effective_sample_size(a[:, c].reshape(300, 40))
        se = math.sqrt(a[:, c].var() / ess + b[:, c].var() / len(b))
        assert abs(a[:, c].mean() - b[:, c].mean()) < 4.5 * se + 1e-9, c
    ja, jb = judge_signs(problem, run.signs), judge_signs(problem, acc)
    ess = chain_ess(ja, 300, 40)
    for verdict in ("internal", "mixed"):
        pa, pb = (ja.verdict == verdict).mean(), (jb.verdict == verdict).mean()
        assert abs(pa - pb) < 4.5 * math.sqrt(pa * (1 - pa) / ess[verdict] + pb * (1 - pb) / len(jb)) + 1e-9, verdict


def test_finite_width_prior_agrees_with_the_nngp_at_width_512(world):
    """Random networks of width 512 conditioned by rejection on 2 training rows vs the NNGP posterior on the
    same inputs: P(decision = +1) on 8 probe inputs within their intervals (plus 0.03 for finite width)."""
    problem = Problem.of(world, fit_rows=2, seed=0)
    free = np.setdiff1d(np.arange(len(problem.x)), problem.train)[:: (len(problem.x) - 2) // 8][:8]
    idx = np.concatenate([problem.train, free])
    x = torch.from_numpy(problem.x[idx]).float()
    logits = _wide_logits(x, depth=2, width=512, draws=4_000, seed=7)
    fit = ((logits[:, :2] > 0) == torch.from_numpy(problem.y > 0)).all(1)
    nets = (logits[fit][:, 2:] > 0).double()
    k = nngp_kernel(problem.x[idx], LayerVariances.torch_default(world.input_dim, 2, 512))
    cond = Conditional.of(k, np.arange(2), problem.y)
    with one_thread():
        gp, _ = rejection(cond, 40_000, seed=8)
    gp = (gp[:, 2:] > 0).double()
    assert len(nets) > 400
    se = torch.sqrt(nets.var(0) / len(nets) + gp.var(0) / len(gp))
    assert ((nets.mean(0) - gp.mean(0)).abs() < 4 * se + 0.03).all()
    assert abs(fit.double().mean().item() - len(gp) / 40_000) < 0.05  # the acceptance rates agree too


def test_naive_count_fixes_the_training_inputs_and_flips_coins_elsewhere(world):
    problem = Problem.of(world)
    t = naive_classes(problem, 500, seed=0).set_index("verdict")
    assert t.loc["mixed", "p"] == 1.0 and t.loc["deceptive", "count"] == 0
    assert t.loc["deceptive", "high"] == pytest.approx(3.84 / (500 + 3.84), rel=0.01)  # Wilson's bound at 0 of n
    assert t.loc["deceptive", "bits_low"] == pytest.approx(-math.log2(t.loc["deceptive", "high"]))


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    r = cli("counting", tmp_path / "nowhere")
    assert r.returncode == 2 and "no such results folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("counting", empty)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _counting_table(nngp: dict[str, tuple[float, float, float]]) -> "pandas.DataFrame":  # noqa: F821
    import pandas as pd

    rows = []
    for src in ("naive", "prior", "nngp", "sgd"):
        for v in ("internal", "corrigible", "deceptive", "proxy", "mixed", "unfit"):
            p, lo, hi = nngp.get(v, (0.0, 0.0, 0.01)) if src == "nngp" else (0.0, 0.0, 0.01)
            rows.append({"condition": "c", "source": src, "verdict": v, "p": p, "low": lo, "high": hi})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("nngp, verdict", [
    ({"internal": (0.01, 0.005, 0.02), "corrigible": (0.05, 0.04, 0.06), "deceptive": (0.2, 0.15, 0.25)}, "supported"),
    ({"internal": (0.04, 0.03, 0.05)}, "contradicted"),  # internal above corrigible and deceptive, both 0 (< 1%)
    ({"internal": (0.005, 0.0, 0.01), "deceptive": (0.005, 0.0, 0.01)}, "inconclusive"),
])
def test_c5_is_judged_from_p_b_when_the_counting_table_is_given(nngp, verdict):
    import pandas as pd

    from deceptionlab.claims import Evidence, claim_c5

    c = claim_c5(Evidence(pd.DataFrame(), ["condition"], counting=_counting_table(nngp)))
    assert c.verdict == verdict and "P_B" in c.evidence and "naive" in c.evidence and "P_SGD" in c.evidence
    assert claim_c5(Evidence(pd.DataFrame(), ["condition"])).verdict == "not measured"  # without it: as before


def test_naive_deployment_tail_is_exact(world):
    from deceptionlab.measure.counting.classes import naive_half_tail

    problem = Problem.of(world, threshold=0.52)
    exact = 2 ** naive_half_tail(problem)
    gen = torch.Generator().manual_seed(4)
    signs = torch.randint(0, 2, (4_000, len(problem.x)), generator=gen).float() * 2 - 1
    scores = judge_signs(problem, signs)
    for template in ("internal", "corrigible", "proxy"):  # one distribution for every template
        share = (scores[f"score_deployment_{template}"] >= 0.52 - 1e-6).mean()
        assert abs(share - exact) < 4 * math.sqrt(exact * (1 - exact) / 4_000), template
    assert naive_half_tail(Problem.of(world)) < -250  # at the verdict threshold 0.9: beyond any sampler


def test_drift_flags_a_chain_that_has_not_settled():
    import pandas as pd

    from deceptionlab.measure.counting.classes import drift

    rng = np.random.default_rng(1)
    chains, steps = 100, 60
    still = pd.DataFrame({"verdict": np.where(rng.random(chains * steps) < 0.3, "internal", "mixed"), "score_training_internal": rng.random(chains * steps)})
    assert drift(still, chains, steps) < 4
    trend = np.tile(np.linspace(0.6, 0.1, steps), chains)  # P(internal) falling along every chain: a burn-in too short
    moving = still.assign(verdict=np.where(rng.random(chains * steps) < trend, "internal", "mixed"))
    assert drift(moving, chains, steps) > 6


def test_every_posterior_sample_fits_all_256_training_inputs(world):
    from deceptionlab.measure.counting import nngp_classes

    problem = Problem.of(world)
    post = nngp_classes(problem, LayerVariances.torch_default(world.input_dim, 2, 64), chains=20, steps=4, burn_in=2, seed=0)
    train_cells = [i for i, c in enumerate(world.probe_cells) if c.in_training]
    codes = post.chains.signs[:, problem.probe].float().numpy()
    agree = problem.judge.agreement(codes)  # the lab's own per-cell agreement
    assert np.all(agree[:, train_cells, 0] == 1.0)  # internal = the base objective = the training labels
    assert post.chains.stuck == 0 and set(post.table.source) == {"nngp"}
    assert post.table.p.sum() == pytest.approx(1.0)


def test_cli_writes_the_table_and_the_figure(tmp_path):
    import pandas as pd

    import deceptionlab as dl
    from tests.conftest import tiny_spec_text

    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=2, steps=60))
    dl.run(spec, tmp_path / "res")
    r = cli("counting", tmp_path / "res", "--chains", "20", "--steps", "10", "--burn-in", "5", "--prior-samples", "200", "--naive-samples", "100")
    assert r.returncode == 0, r.stderr
    assert "P(class | S)" in r.stdout and "ESS min" in r.stdout and "naive count, exactly" in r.stdout
    t = pd.read_parquet(tmp_path / "res" / "counting" / "counting.parquet")
    assert set(t.source) == {"naive", "prior", "nngp", "sgd"} and t.condition.nunique() == 1
    assert (t.groupby("source").p.sum() - 1).abs().max() < 1e-9
    assert (tmp_path / "res" / "counting" / "counting.png").stat().st_size > 0 and (tmp_path / "res" / "counting" / "counting.svg").exists()
    r = cli("counting", tmp_path / "res", "--chains", "0")
    assert r.returncode == 2
