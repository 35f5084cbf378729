"""The finite-width posterior sampler (measure/counting/finite.py, docs/counting.md): the latent transform
gives the init's distribution, and on a reduced bitworld (4 training rows, where drawing networks from
the init and keeping those that fit does accept) the sampler and rejection sample the same posterior:
cell-mean decisions and verdict shares agree within their intervals, and with the NNGP posterior on
the statistic the finite width leaves alone."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deceptionlab.measure.counting import Problem
from deceptionlab.measure.counting.classes import chain_ess, judge_signs
from deceptionlab.measure.counting.finite import Networks, finite_classes, network_rejection
from deceptionlab.measure.counting.sampler import effective_sample_size
from deceptionlab.worlds import make_world


@pytest.fixture(scope="module")
def world():
    return make_world("bitworld", {})


def _cell_means(problem: Problem, signs: torch.Tensor) -> np.ndarray:
    codes = signs[:, problem.probe].numpy().astype(float)
    return np.stack([codes[:, problem.judge.member == c].mean(1) for c in range(problem.judge.n_cells)], 1)


def test_latents_map_to_the_init_distribution():
    nets = Networks(n_in=12, depth=2, width=16, weight_scale=4.0)
    z = torch.randn(4000, nets.dim, generator=torch.Generator().manual_seed(0))
    (w1, b1), (w2, b2), (w3, b3) = nets.params(z)
    assert w1.shape == (4000, 12, 16) and w3.shape == (4000, 16, 1) and nets.dim == 12 * 16 + 16 + 16 * 16 + 16 + 17
    # U(-b, b) has variance b^2 / 3; the weights' bound grows with sqrt(weight_scale), the biases' does not
    assert float(w1.var()) == pytest.approx(4.0 / (3 * 12), rel=0.02) and float(b1.var()) == pytest.approx(1 / (3 * 12), rel=0.03)
    assert float(w2.abs().max()) <= 2 / math.sqrt(16) and float(w2.abs().max()) > 0.99 * 2 / math.sqrt(16)
    hist = torch.histc(b2.flatten() * 4, bins=10, min=-1, max=1) / b2.numel()  # uniform: a tenth in each bin
    assert (hist - 0.1).abs().max() < 0.01


@pytest.fixture(scope="module")
def reduced(world):
    problem = Problem.of(world, fit_rows=4, seed=0)
    nets = Networks(world.input_dim, 2, 64)
    post = finite_classes(problem, nets, chains=100, steps=30, burn_in=30, seed=3)
    acc, draws = network_rejection(problem, nets, 16_000, seed=4)
    return problem, post, acc, draws


def test_finite_width_sampler_agrees_with_rejection_on_a_reduced_world(reduced):
    problem, post, acc, draws = reduced
    assert 350 < len(acc) < 1500  # rejection does accept here (about 3.7% of the draws)
    assert post.dropped == 0 and post.stuck == 0 and post.drift_z < 4.5
    # every kept sample fits the conditioned rows, as every accepted draw does
    fits = lambda s: (s[:, problem.train].numpy() == problem.y.astype(np.int8)).all(1)  # noqa: E731
    assert fits(post.signs).all() and fits(acc).all()
    a, b = _cell_means(problem, post.signs), _cell_means(problem, acc)
    z = []
    for c in range(a.shape[1]):
        ess = effective_sample_size(a[:, c].reshape(post.chains, post.steps))
        se = math.sqrt(a[:, c].var() / ess + b[:, c].var() / len(b))
        z.append(abs(a[:, c].mean() - b[:, c].mean()) / (se + 1e-12))
    assert max(z) < 4.5, z
    ja, jb = judge_signs(problem, post.signs), judge_signs(problem, acc)
    ess = chain_ess(ja, post.chains, post.steps)
    for score in ("score_training_internal", "score_deployment_internal"):
        pa, pb = ja[score], jb[score]
        se = math.sqrt(pa.var() / ess[score] + pb.var() / len(pb))
        assert abs(pa.mean() - pb.mean()) < 4.5 * se, score
    assert post.table.set_index("verdict").loc["mixed", "low"] <= (jb.verdict == "mixed").mean()


def test_the_check_sees_a_posterior_of_other_training_data(reduced, world):
    """The same check fails for a sampler conditioned on the wrong data: 4 other training rows (labelled
    -1, -1, +1, +1 instead of -1, +1, +1, +1) move every cell's mean decision by about 0.4, and the agreement
    test above rejects it (so it could have failed)."""
    problem, _, acc, _ = reduced
    other = Problem.of(world, fit_rows=4, seed=1)
    assert sorted(other.y) != sorted(problem.y)
    wrong = finite_classes(other, Networks(world.input_dim, 2, 64), chains=60, steps=20, burn_in=20, seed=5)
    a, b = _cell_means(other, wrong.signs), _cell_means(problem, acc)
    ess = np.array([effective_sample_size(a[:, c].reshape(wrong.chains, wrong.steps)) for c in range(a.shape[1])])
    z = np.abs(a.mean(0) - b.mean(0)) / np.sqrt(a.var(0) / ess + b.var(0) / len(b))
    assert z.max() > 4.5 and (z > 4.5).sum() >= a.shape[1] // 2, z


def test_cli_adds_the_finite_width_source(tmp_path):
    import io

    import pandas as pd

    import deceptionlab as dl
    from tests.conftest import cli, tiny_spec_text

    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=2, steps=60))
    dl.run(spec, tmp_path / "res")
    r = cli("counting", tmp_path / "res", "--chains", "20", "--steps", "10", "--burn-in", "5", "--prior-samples", "0", "--naive-samples", "100",
            "--finite-chains", "6", "--finite-steps", "6", "--finite-burn-in", "4", "--width", "64")
    assert r.returncode == 0, r.stderr
    assert "finite-width posterior (2x64 networks): 36 samples (6 chains x 6 steps after 4;" in r.stdout and "finite" in r.stdout
    t = pd.read_parquet(tmp_path / "res" / "counting" / "counting.parquet")
    fin = t[t.source == "finite"].set_index("verdict")
    assert fin.n.eq(36).all() and fin.p.sum() == pytest.approx(1.0) and fin.loc["unfit", "count"] == 0  # every sample fits S
    diag = pd.read_csv(tmp_path / "res" / "counting" / "counting_diagnostics.csv")
    assert diag.finite_samples.iloc[0] == 36 and diag.finite_dropped.iloc[0] == 0 and diag.finite_stuck.iloc[0] == 0
    assert (tmp_path / "res" / "counting" / "functions.png").stat().st_size > 0
    rep = cli("report", tmp_path / "res", "--counting", tmp_path / "res" / "counting" / "counting.parquet", "--prior-samples", "0", "-o", tmp_path / "r.html")
    assert rep.returncode == 0, rep.stderr
    html = (tmp_path / "r.html").read_text()
    assert "P_B(f | S) vs P_SGD(f | S) on held-out inputs" in html and "P_B of the networks" in html  # the figure and C5's evidence
    csv = cli("counting", tmp_path / "res", "--chains", "10", "--steps", "4", "--burn-in", "2", "--prior-samples", "0", "--naive-samples", "50",
              "--function-inputs", "0", "-o", tmp_path / "c2", "--format", "csv")
    assert csv.returncode == 0, csv.stderr
    long = pd.read_csv(io.StringIO(csv.stdout))  # the counting table alone on stdout
    assert set(long.source) == {"naive", "nngp", "sgd"} and (long.groupby("source").p.sum() - 1).abs().max() < 1e-9
    assert not (tmp_path / "c2" / "functions.parquet").exists()  # --function-inputs 0 skips the function level
    bad = cli("counting", tmp_path / "res", "--finite-chains", "-1")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--finite-chains" in bad.stderr


def test_function_level_frequencies_and_correlation(world, tmp_path):
    """Held-out inputs are distinct non-training probe inputs; posterior frequencies sum to 1; a source
    equal to SGD's gives r = 1 and one reversed gives r < 0; trained runs decode as `dl.decisions` does."""
    import pandas as pd

    import deceptionlab as dl
    from deceptionlab.measure.counting.functions import correlation, held_out_positions, posterior_functions, sgd_functions
    from deceptionlab.report.counting_figures import function_level
    from tests.conftest import tiny_spec_text

    problem = Problem.of(world)
    pos = held_out_positions(problem, 8)
    inputs = problem.probe[pos]
    assert len(set(inputs.tolist())) == 8 and not set(inputs.tolist()) & set(problem.train.tolist())
    gen = torch.Generator().manual_seed(0)
    signs = torch.where(torch.rand(40 * 10, len(problem.x), generator=gen) < 0.5, 1, -1).to(torch.int8)
    post = posterior_functions(problem, signs, 40, 10, pos, "nngp")
    assert post.p.sum() == pytest.approx(1.0) and post["count"].sum() == 400 and (post.low <= post.p).all() and (post.p <= post.high).all()
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=6, steps=60))
    runs = dl.run(spec, tmp_path / "res")
    sgd = sgd_functions(runs, problem, pos)
    long = dl.decisions(runs)
    first = runs[runs.train_accuracy >= 0.95 - 1e-6].run_id.iloc[0]
    code = "".join("1" if c > 0 else "0" for c in long[long.run_id == first].set_index("input").code.loc[pos])
    assert code in set(sgd.function) and sgd["count"].sum() == (runs.train_accuracy >= 0.95 - 1e-6).sum()
    fake = pd.DataFrame({"function": ["a", "b", "c", "d"], "p": [0.4, 0.3, 0.2, 0.1], "low": 0.0, "high": 1.0, "n": 10, "count": 1, "ess": 10.0})
    same = pd.concat([fake.assign(source="sgd"), fake.assign(source="nngp")]).assign(condition="x")
    rev = pd.concat([fake.assign(source="sgd"), fake.assign(source="nngp", p=fake.p[::-1].to_numpy())]).assign(condition="x")
    assert correlation(same)["r_log10"] == pytest.approx(1.0) and correlation(rev)["r_log10"] < -0.9
    assert correlation(same.query("function != 'd' or source == 'sgd'"))["sgd_mass_unseen"] == pytest.approx(0.1)
    paths = function_level(same, tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)
