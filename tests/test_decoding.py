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
