"""The compiled training kernel (train/_train_kernel.c) computes the trainer's torch path: same
weights, losses, verdicts, early stopping and data order, with and without DECEPTIONLAB_NO_KERNEL."""

from __future__ import annotations

import tomllib

import pytest
import torch

from deceptionlab.models import MLPEnsemble
from deceptionlab.sweep import parse_spec
from deceptionlab.sweep.experiment import train_chunk
from deceptionlab.sweep.spec import expand
from deceptionlab.train import HeadData, Phase, Stopping, train, train_kernel
from deceptionlab.worlds import Bitworld
from tests.conftest import tiny_spec_text

pytestmark = pytest.mark.skipif(train_kernel.load() is None, reason="no C compiler: the torch path is all there is")


@pytest.fixture
def no_kernel(monkeypatch):
    """Switch the kernel off (the torch path) inside a `with`-less block: call it with True/False."""

    def switch(off: bool):
        if off:
            monkeypatch.setenv("DECEPTIONLAB_NO_KERNEL", "1")
        else:
            monkeypatch.delenv("DECEPTIONLAB_NO_KERNEL", raising=False)

    return switch


WORLD = Bitworld({"situational_awareness": "interaction", "overseer_model": True})


def _phases():
    """Two phases with different heads and loss weights, as the flagship's curricula have."""
    ds, og = WORLD.datasets["train"], WORLD.datasets["own_goal"]
    return [
        Phase("pre", 120, [HeadData(0, og.x, og.y, 1.0), HeadData(1, ds.x, ds.y, 0.5)]),
        Phase("main", 180, [HeadData(0, ds.x, ds.y, 1.0), HeadData(1, ds.x, ds.y, 1.0), HeadData(2, ds.x, ds.y, 2.0)]),
    ]


def _train(optimizer, kw, n=16, width=64, stopping=None, evaluate=None, log_every=50, phases=None):
    model = MLPEnsemble.init(WORLD.input_dim, 2, width, 3, [torch.Generator().manual_seed(i) for i in range(n)])
    traj = train(model, phases or _phases(), optimizer=optimizer, **kw, batch_size=32,
                 data_generators=[torch.Generator().manual_seed(1000 + i) for i in range(n)], log_every=log_every,
                 evaluate=evaluate or (lambda m: {}), stopping=stopping)
    return model.params, traj


def _both(no_kernel, *args, **kw):
    no_kernel(True)
    torch_path = _train(*args, **kw)
    no_kernel(False)
    return torch_path, _train(*args, **kw)


def test_sgd_with_momentum_and_weight_decay_matches_the_torch_path(no_kernel):
    (p_torch, t_torch), (p_kernel, t_kernel) = _both(no_kernel, "sgd", dict(lr=0.05, momentum=0.9, weight_decay=0.01))
    for a, b in zip(p_torch, p_kernel):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4)
    torch.testing.assert_close(t_kernel.stacked()["train_loss"], t_torch.stacked()["train_loss"], rtol=1e-4, atol=1e-6, equal_nan=True)
    assert t_kernel.steps == t_torch.steps and t_kernel.phase == t_torch.phase


def test_adam_matches_the_torch_path(no_kernel):
    """Adam at the flagship's rate. A pre-activation within float rounding of 0 on a minibatch row (a
    different summation order decides its sign) sends a member on a trajectory that drifts by ~1e-5 per
    step, so most members agree to 1e-4 after 300 steps and every member's losses agree closely."""
    (p_torch, t_torch), (p_kernel, t_kernel) = _both(no_kernel, "adam", dict(lr=1e-3, weight_decay=1e-3), n=32)
    per_member = torch.stack([(a - b).abs().flatten(1).max(1).values for a, b in zip(p_torch, p_kernel)]).max(0).values
    assert (per_member <= 1e-4).float().mean() >= 0.85, per_member
    assert per_member.max() <= 1e-2, per_member
    torch.testing.assert_close(t_kernel.stacked()["train_loss"], t_torch.stacked()["train_loss"], rtol=2e-2, atol=1e-5, equal_nan=True)


def test_a_chunk_gets_the_same_verdicts_and_scores_with_and_without_the_kernel(no_kernel):
    spec = parse_spec(tomllib.loads(tiny_spec_text(seeds=6)))
    runs = [r for r in expand(spec) if r.condition.axes["situational_awareness"] == "cue"]
    no_kernel(True)
    torch_path = train_chunk(runs)[0].to_pandas()
    no_kernel(False)
    kernel = train_chunk(runs)[0].to_pandas()
    assert list(kernel.verdict) == list(torch_path.verdict)
    for col in ["score_internal", "score_corrigible", "score_deceptive", "score_proxy", "train_accuracy"]:
        assert kernel[col].to_numpy() == pytest.approx(torch_path[col].to_numpy(), abs=1e-3)


def test_members_stop_early_at_the_same_steps(no_kernel):
    """Early stopping: a stopped member is skipped by the kernel and held by the torch path."""
    ds = WORLD.datasets["train"]

    def evaluate(model):
        z = model.logits(ds.x.float())[..., 0]
        return {"train_accuracy": ((z > 0).float() * 2 - 1 == ds.y.float()).float().mean(-1)}

    kw = dict(stopping=Stopping(0.9), evaluate=evaluate, log_every=20, phases=[Phase("fit", 400, [HeadData(0, ds.x, ds.y, 1.0)])])
    (p_torch, t_torch), (p_kernel, t_kernel) = _both(no_kernel, "sgd", dict(lr=0.05, momentum=0.9), **kw)
    assert t_kernel.stop_step == t_torch.stop_step
    assert len(set(t_kernel.stop_step)) > 1  # members stopped at different steps, the early ones held while others trained
    for a, b in zip(p_torch, p_kernel):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-4)


def test_a_member_does_not_depend_on_its_ensemble_or_the_threads():
    """Member by member, whatever the ensemble or the number of threads: bit for bit."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        together, _ = _train("adam", dict(lr=1e-3), n=6, width=16)
        torch.set_num_threads(1)
        model = MLPEnsemble.init(WORLD.input_dim, 2, 16, 3, [torch.Generator().manual_seed(4)])
        train(model, _phases(), optimizer="adam", lr=1e-3, batch_size=32, data_generators=[torch.Generator().manual_seed(1004)],
              log_every=50, evaluate=lambda m: {})
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(together, model.params):
        assert torch.equal(a[4], b[0])


def test_shapes_the_kernel_does_not_compute_take_the_torch_path():
    params = MLPEnsemble.init(12, 2, 11, 3, [torch.Generator().manual_seed(0)]).params
    assert not train_kernel.supports(params, "adam", 32)
    assert train_kernel.supports(MLPEnsemble.init(12, 2, 64, 3, [torch.Generator().manual_seed(0)]).params, "sgd", 32)
    _train("adam", dict(lr=1e-3), n=2, width=11)  # trains (width 11 is not a multiple of 16)


@pytest.mark.parametrize("depth,width", [(2, 64), (1, 32), (3, 16)])
def test_checkpoint_evaluation_in_the_kernel_equals_torchs_bit_for_bit(depth, width, no_kernel):
    """The checkpoints' forward pass (judge.cells.ProbeEvaluator: the trunk, the policy logit and
    the probes' hidden rows) computed by the kernel gives torch's values exactly, and so the same
    evaluation: scores, decisions, losses and decodability."""
    from deceptionlab.judge.cells import ProbeEvaluator

    model = MLPEnsemble.init(WORLD.input_dim, depth, width, len(WORLD.heads), [torch.Generator().manual_seed(s) for s in range(12)])
    with torch.no_grad():
        for p in model.params:  # trained-looking weights: larger than the init, some units dead
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.5)
    ev = ProbeEvaluator(WORLD)
    hidden = model.trunk(ev.x)
    for head in range(len(WORLD.heads)):
        logits, kept = train_kernel.forward(model.params, ev.x, head, keep=300)
        assert torch.equal(logits, model.readout(hidden)[..., head]) and torch.equal(kept, hidden[:, :300])
    fast = ev(model)
    no_kernel(True)
    slow = ev(model)
    assert fast.keys() == slow.keys() and all(torch.equal(fast[k], slow[k]) for k in fast)
    decisions = ev.outputs(model)  # and scoring +-1 outputs by one product gives the general scorer's counts
    assert all(torch.equal(a, b) for a, b in zip(ev.score_signs(decisions).values(), ev.score_outputs(decisions).values()))
