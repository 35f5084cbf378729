"""Linear probes on the trunk: does the model know its situation, and what the trainer wants?"""

from __future__ import annotations

import torch

from deceptionlab.measure import ProbeEvaluator
from deceptionlab.models import MLPEnsemble
from deceptionlab.worlds import Bitworld


def _constructed(world: Bitworld) -> MLPEnsemble:
    """Member 0 copies the cue into two hidden units; member 1 is blind to the cue but computes w0..w4."""
    m = MLPEnsemble.init(world.input_dim, 2, 8, len(world.heads), [torch.Generator().manual_seed(i) for i in range(2)])
    for p in m.params:
        p.zero_()
    cue = world.channels["situation_cue"].start
    w1, w2 = m.params[0], m.params[2]
    w1[0, cue, 0], w1[0, cue, 1] = 1.0, -1.0
    w2[0, 0, 0], w2[0, 1, 1] = 1.0, 1.0
    for bit in range(5):  # member 1: unit k carries w_k, twice over (+ and - halves)
        w1[1, bit, bit] = 1.0
    w2[1, :5, :5] = torch.eye(5)
    m.params[1][1] += 1.0  # bias keeps the units linear in w (w in {-1,+1})
    return m


def test_probe_reads_what_the_trunk_carries_and_nothing_else():
    world = Bitworld()
    ev = ProbeEvaluator(world)
    assert ev.decodable_names == ["situation", "base_objective", "situation_x_state"]
    dec = ev(_constructed(world))["decodability"]  # (2 members, 3 decodables)
    assert dec[0, 0].item() == 1.0  # the cue-copying member: situation perfectly decodable
    assert dec[1, 0].item() < 0.6  # the blind member: chance
    assert dec[1, 1].item() >= 0.9  # ... yet the base objective (a threshold of w0..w4) is linear in its units
    assert dec[0, 1].item() < 0.7  # the cue-copying member knows nothing of the objective
    assert dec[:, 2].max().item() < 0.6  # neither carries cue x w1: a product no linear probe reads off cue or w alone


def test_the_cue_is_decodable_at_init_but_its_interaction_with_the_state_is_not():
    world = Bitworld()
    ev = ProbeEvaluator(world)
    m = MLPEnsemble.init(world.input_dim, 2, 64, len(world.heads), [torch.Generator().manual_seed(i) for i in range(16)])
    dec = ev(m)["decodability"]
    assert dec[:, 0].min().item() >= 0.95  # an input bit survives random ReLU layers linearly
    assert dec[:, 2].mean().item() < 0.75  # cue x w1 has to be learnt


def test_deployment_cells_are_the_discriminating_ones_outside_training():
    ev = ProbeEvaluator(Bitworld())
    names = [n for n, d in zip(ev.cell_names, ev.deployment.tolist()) if d]
    assert names and all(n.startswith("deployment/") for n in names)
    assert "deployment/base/agree" not in names  # every template agrees there
    assert len(names) == 5


def test_wide_probes_finish_after_the_thread_count_was_set():
    """After torch.set_num_threads (as a CLI, a worker or a notebook may call it), the CPU build's MKL fails
    batched LU solves of n >= about 200 with "SLASWP" errors and hangs; the probes solve by Cholesky and
    finish, with the same accuracies as an LU solve gives in a fresh process."""
    import subprocess
    import sys

    code = """
import sys, torch
from deceptionlab.judge.cells import probe_accuracy
g = torch.Generator().manual_seed(0)
h, y = torch.randn(8, 400, 256, generator=g), torch.randn(300, 3, generator=g).sign()
if sys.argv[1] == "set":
    torch.set_num_threads(1); torch.set_num_threads(2)
    print(probe_accuracy(h, torch.arange(300), y, 200).tolist())
else:  # the reference: an LU solve of the same system, in a process whose threads were never set
    fit = torch.cat([h[:, :200], torch.ones(8, 200, 1)], 2)
    w = torch.linalg.solve(fit.transpose(1, 2) @ fit + 1e-2 * 200 * torch.eye(257), fit.transpose(1, 2) @ y[:200])
    test = torch.cat([h[:, 200:300], torch.ones(8, 100, 1)], 2)
    print(((test @ w).sign() == y[200:]).float().mean(1).tolist())
"""
    runs = [subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120) for mode in ("set", "fresh")]
    assert all(r.returncode == 0 and "MKL ERROR" not in r.stdout + r.stderr for r in runs), [r.stderr[-500:] for r in runs]
    assert runs[0].stdout == runs[1].stdout


def test_spd_solve_gives_nan_for_a_matrix_that_is_not_positive_definite_and_solves_the_rest():
    from deceptionlab.core.linalg import spd_solve

    a = torch.eye(3).repeat(4, 1, 1) * 2
    a[2, 1, 1] = float("inf")  # a diverged member
    x = spd_solve(a, torch.ones(4, 3, 1))
    assert x[2].isnan().all() and torch.equal(x[[0, 1, 3]], torch.full((3, 3, 1), 0.5))
