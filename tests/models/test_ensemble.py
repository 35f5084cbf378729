"""Batched ensembles: hand-written gradients, per-member optimisers, and independence of members."""

from __future__ import annotations

import pytest
import torch

from deceptionlab.models import MLPEnsemble
from deceptionlab.sweep import parse_spec
from deceptionlab.sweep.experiment import train_chunk
from deceptionlab.sweep.spec import expand
from deceptionlab.train.optim import SGD, Adam
from tests.conftest import tiny_spec_text


def _ensemble(n=5, n_in=7, depth=3, width=11, heads=3, seed=0):
    return MLPEnsemble.init(n_in, depth, width, heads, [torch.Generator().manual_seed(seed + i) for i in range(n)])


@pytest.mark.parametrize("block_heads", [None, [2, 0], [1]])
def test_backward_matches_autograd(block_heads):
    m = _ensemble()
    r = 4 * (len(block_heads) if block_heads else 1)
    x = torch.randn(5, r, 7)
    params = [p.clone().requires_grad_(True) for p in m.params]
    z, cache = MLPEnsemble(params).forward(x, block_heads)
    dz = torch.randn_like(z)
    (z * dz).sum().backward()
    mine = MLPEnsemble(m.params).backward(MLPEnsemble(m.params).forward(x, block_heads)[1], dz)
    for g_auto, g in zip(params, mine):
        torch.testing.assert_close(g, g_auto.grad, rtol=1e-5, atol=1e-6)


def test_block_mode_logits_equal_full_readout():
    m = _ensemble()
    x = torch.randn(5, 8, 7)
    full, _ = m.forward(x)
    rows, _ = m.forward(x, [2, 0])
    torch.testing.assert_close(rows[:, :4], full[:, :4, 2])
    torch.testing.assert_close(rows[:, 4:], full[:, 4:, 0])


def _plain_member(m: MLPEnsemble, k: int) -> torch.nn.Sequential:
    layers = []
    for l in range(m.depth + 1):
        lin = torch.nn.Linear(*m.params[2 * l].shape[1:])
        with torch.no_grad():
            lin.weight.copy_(m.params[2 * l][k].T)
            lin.bias.copy_(m.params[2 * l + 1][k, 0])
        layers += [lin, torch.nn.ReLU()] if l < m.depth else [lin]
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize(
    "make_ours,make_torch",
    [
        (lambda p: SGD(p, 0.05, momentum=0.9, weight_decay=0.01), lambda p: torch.optim.SGD(p, 0.05, momentum=0.9, weight_decay=0.01)),
        (lambda p: Adam(p, 0.01, weight_decay=0.001), lambda p: torch.optim.Adam(p, 0.01, weight_decay=0.001)),
    ],
    ids=["sgd", "adam"],
)
def test_optimisers_match_torch_member_by_member(make_ours, make_torch):
    m = _ensemble(n=3, heads=1)
    plains = [_plain_member(m, k) for k in range(3)]
    ours = make_ours(m.params)
    theirs = [make_torch(p.parameters()) for p in plains]
    g = torch.Generator().manual_seed(1)
    for _ in range(25):
        x = torch.randn(3, 6, 7, generator=g)
        y = torch.randn(3, 6, 1, generator=g)
        z, cache = m.forward(x)
        ours.step(m.backward(cache, (z - y) / 6))  # grad of 0.5 * mean squared error
        for k, (net, opt) in enumerate(zip(plains, theirs)):
            opt.zero_grad()
            (0.5 * ((net(x[k]) - y[k]) ** 2).sum() / 6).backward()
            opt.step()
    for k, net in enumerate(plains):
        torch.testing.assert_close(m.params[-2][k], net[-1].weight.T.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(m.params[0][k], net[0].weight.T.detach(), rtol=1e-4, atol=1e-5)


def test_member_of_an_ensemble_matches_the_run_trained_alone():
    spec = parse_spec(__import__("tomllib").loads(tiny_spec_text(seeds=6)))
    runs = [r for r in expand(spec) if r.condition.axes["situational_awareness"] == "cue"]
    together = train_chunk(runs)[0].to_pandas()
    alone = train_chunk([runs[3]])[0].to_pandas()
    row = together[together.run_id == runs[3].run_id].iloc[0]
    assert row.verdict == alone.verdict[0]
    for col in ["score_internal", "score_corrigible", "score_deceptive", "score_proxy", "train_accuracy"]:
        assert row[col] == pytest.approx(alone[col][0], abs=1e-6)
    for a, b in zip(row.traj_loss_policy, alone.traj_loss_policy[0]):
        assert (a != a and b != b) or a == pytest.approx(b, rel=1e-4, abs=1e-6)
    # and the members really differ from one another: their own seeds, their own data
    assert together.traj_loss_policy.map(lambda t: round(t[-1], 6)).nunique() == len(runs)


def test_init_is_per_member_seeded():
    a = _ensemble(n=4, seed=10)
    b = MLPEnsemble.init(7, 3, 11, 3, [torch.Generator().manual_seed(12)])
    torch.testing.assert_close(a.params[0][2], b.params[0][0])
    assert not torch.equal(a.params[0][0], a.params[0][1])
