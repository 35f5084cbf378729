"""Speed: FLOPs, the halting distribution, the ponder loss, imitation per class, and `deceptionlab speed`."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from deceptionlab.api import ponder_sweep, speed_results
from deceptionlab.measure import (
    ImitationConfig,
    PonderConfig,
    ProbeEvaluator,
    compute_per_class,
    forward_flops,
    imitation_grid,
)
from deceptionlab.models import MLPEnsemble, PonderEnsemble
from deceptionlab.models.ponder import PonderOutput, expected_layers, halting_log_distribution, ponder_loss
from deceptionlab.sweep import load_spec
from deceptionlab.worlds import Bitworld
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls: one thread is faster than two on a shared machine; restore afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_forward_flops_by_hand():
    # 14 inputs -> 8 -> 8 -> 1: 2 * (14*8 + 8*8 + 8*1) = 368
    assert forward_flops(14, 2, 8) == 368
    assert forward_flops(14, 1, 1) == 2 * (14 + 1)


def test_halting_distribution_sums_to_one_and_matches_hand_computation():
    # lambda_1 = 1/2, lambda_2 = 3/4 -> p = (1/2, 1/2 * 3/4, 1/2 * 1/4)
    h = [torch.zeros(1, 1), torch.full((1, 1), math.log(3.0))]
    p = halting_log_distribution(h, (1, 1)).exp()[0, 0]
    assert p.tolist() == pytest.approx([0.5, 0.375, 0.125], abs=1e-6)
    assert expected_layers(p.log()).item() == pytest.approx(0.5 + 2 * 0.375 + 3 * 0.125, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    many = [torch.randn(5, 7, generator=g) * 10 for _ in range(4)]  # confident heads too
    assert halting_log_distribution(many, (5, 7)).exp().sum(-1).sub(1).abs().max().item() < 1e-5


@pytest.mark.parametrize("penalty", ["layers", "kl"])
def test_ponder_loss_gradient_matches_finite_differences(penalty):
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    model = PonderEnsemble.init(4, 3, 3, 2, gens)
    keys = [(k, l) for k, ts in model.params.items() for l in range(len(ts))]
    params = [t.detach().double().requires_grad_() for t in model.parameters()]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 6), generator=g).double() * 2 - 1
    head = torch.tensor([0, 0, 0, 1, 1, 1])
    beta = torch.tensor([0.3, 2.0], dtype=torch.float64)

    def loss(*ps):
        d: dict[str, list] = {}
        for (k, _), p in zip(keys, ps):
            d.setdefault(k, []).append(p)
        out = PonderEnsemble(d).forward(x)
        return ponder_loss(PonderOutput(out.logits, out.log_p), y, head, beta, penalty, lambda_p=0.3)

    assert torch.autograd.gradcheck(loss, params, eps=1e-6, atol=1e-5)


def test_ponder_loss_is_expected_loss_plus_beta_times_expected_exit():
    log_p = torch.tensor([[[0.5, 0.375, 0.125]]]).log()  # one member, one row
    z = torch.tensor([[[[2.0], [0.0], [-1.0]]]])  # per-exit logits
    out = PonderOutput(z, log_p)
    got = ponder_loss(out, torch.ones(1, 1), torch.zeros(1, dtype=torch.long), torch.tensor([0.1]))
    bce = [math.log1p(math.exp(-2.0)), math.log(2.0), math.log1p(math.exp(1.0))]
    want = 0.5 * bce[0] + 0.375 * bce[1] + 0.125 * bce[2] + 0.1 * 1.625
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_score_logits_matches_the_mlp_path():
    world = Bitworld()
    ev = ProbeEvaluator(world)
    model = MLPEnsemble.init(world.input_dim, 2, 8, len(world.heads), [torch.Generator().manual_seed(s) for s in range(3)])
    a, b = ev(model), ev.score_logits(model.logits(ev.x)[..., 0])
    assert torch.equal(a["agreement"], b["agreement"]) and torch.equal(a["train_accuracy"], b["train_accuracy"])


SMALL_PONDER = PonderConfig(betas=(0.0, 1.0), widths=(8,), seeds=4, own_goal_steps=0, steps=300, lr=1e-2, world_model_heads=False)


@pytest.fixture(scope="module")
def ponder_runs():
    return ponder_sweep(Bitworld(), SMALL_PONDER)


def test_compute_penalty_moves_the_exit_earlier(ponder_runs):
    runs, cells = ponder_runs
    exit_by_beta = runs.groupby("beta").expected_exit.mean()
    assert exit_by_beta[1.0] < 1.3  # almost every input leaves at the first of 3 layers
    assert exit_by_beta[0.0] > exit_by_beta[1.0] + 0.3
    assert (runs.train_accuracy > 0.9).all()  # bitworld's policy is learnable at one layer
    assert set(cells.cell) == {c.name for c in Bitworld().probe_cells}
    assert len(cells) == len(runs) * 12


def test_ponder_sweep_is_deterministic_under_seeds(ponder_runs, tmp_path):
    runs, cells = ponder_runs
    again, again_cells = ponder_sweep(Bitworld(), SMALL_PONDER, out=tmp_path / "again")  # stored, read back
    pd.testing.assert_frame_equal(runs, again)
    pd.testing.assert_frame_equal(cells, again_cells)


def test_negative_beta_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        ponder_sweep(Bitworld(), PonderConfig(betas=(-1.0,), widths=(2,), seeds=1, steps=1))


def test_one_unit_cannot_imitate_corrigible_but_a_few_can():
    """One ReLU unit computes a threshold of a linear function. That suffices for internal (majority
    of 5 bits) and proxy (w0), but not for corrigible, which under spec alt2 is w0*w1 (an XOR)."""
    cfg = ImitationConfig(depths=(1,), widths=(1, 8), seeds=2, steps=300)
    grid = imitation_grid(Bitworld(), cfg)
    reached = grid.groupby(["class", "width"]).reached.mean()
    assert reached["corrigible", 1] == 0 and reached["deceptive", 1] == 0
    assert reached["corrigible", 8] == 1 and reached["deceptive", 8] > 0
    assert reached["internal", 1] > 0 and reached["proxy", 1] > 0  # measured: a single unit does learn these
    need = compute_per_class(grid).set_index("class")
    assert need.flops["internal"] == forward_flops(Bitworld().input_dim, 1, 1) < need.flops["corrigible"]


def test_compute_per_class_picks_the_cheapest_reaching_architecture():
    grid = pd.DataFrame(
        {"class": ["a"] * 4 + ["b"] * 2, "depth": [1, 1, 2, 2, 1, 1], "width": [4, 4, 2, 2, 4, 4],
         "flops": [100, 100, 60, 60, 100, 100], "reached": [True, True, False, True, False, False]}
    )
    need = compute_per_class(grid).set_index("class")
    assert (need.loc["a", "depth"], need.loc["a", "share"]) == (2, 0.5)
    assert math.isnan(need.loc["b", "flops"]) and need.loc["b", "share"] == 0
    assert compute_per_class(grid, min_share=0.5).set_index("class").loc["a", "flops"] == 100


def test_biases_spec_sweeps_weight_decay_width_and_depth():
    spec = load_spec(REPO / "experiments" / "biases.toml")
    assert {a.path for a in spec.sweep.values()} == {"optimizer.weight_decay", "model.width", "model.depth"}


CLI = [sys.executable, "-m", "deceptionlab", "speed"]
TINY = ["--seeds", "2", "--betas", "0,1", "--widths", "4", "--steps", "60", "--own-goal-steps", "0",
        "--imitation-widths", "1,4", "--imitation-depths", "1", "--imitation-seeds", "1", "--imitation-steps", "300"]


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def test_cli_speed_writes_tables_files_and_reprints(tmp_path):
    out = tmp_path / "speed"
    res = _cli(out, *TINY)
    assert res.returncode == 0, res.stderr
    for text in ("Compute each class needs", "compute penalty beta", "corrigible", "deceptive"):
        assert text in res.stdout
    names = {p.name for p in out.iterdir()}
    for stem in ("verdicts_vs_beta", "performance_vs_beta", "exit_layer_per_cell"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    stored = speed_results(out)  # OUT/imitation and OUT/ponder, read back as frames
    compute = stored.compute.set_index("class")
    assert compute.loc["internal", "width"] == 1 and compute.loc["corrigible", "width"] == 4
    runs = stored.ponder_runs
    assert len(runs) == 4 and set(runs.beta) == {0.0, 1.0}
    again = _cli(out, *TINY)
    assert again.returncode == 0 and "0 runs trained, 12 already stored" in again.stderr
    assert again.stdout == res.stdout  # the same tables, read back instead of recomputed


@pytest.mark.parametrize(
    "args,message",
    [(["--betas", "0,-0.5"], "--betas"), (["--world", "nowhere"], "unknown world"), (["--knob", "colour=red"], "unknown knob")],
)
def test_cli_speed_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    res = _cli(tmp_path / "x", *args)
    assert res.returncode == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
