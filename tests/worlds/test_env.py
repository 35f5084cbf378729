"""The environment protocol (worlds.env): one rollout loop for every episodic world, its check, one-step
k-action choices, and the episodic family on a world that follows it (dense rows, imitation and REINFORCE),
which on the built-in gridworld gives what the gridworld family's sparse fast path gives."""

from __future__ import annotations

import sys
import tomllib

import numpy as np
import pytest
import torch

from deceptionlab.families import get_family
from deceptionlab.judge.deception import Judge, compliance, derive
from deceptionlab.measure.prior_volume import random_ensemble
from deceptionlab.sweep import parse_spec
from deceptionlab.sweep.spec import expand
from deceptionlab.worlds import Bitworld, Gridworld
from deceptionlab.worlds.env import Demonstrations, Episodic
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "examples"))
from corridor_world import COIN, END, LEFT, NONE, RIGHT, Corridor  # noqa: E402
from fourway_world import Fourway  # noqa: E402


def test_one_rollout_loop_batched_over_members_and_episodes():
    w = Corridor({"length": 6})  # cells 0..5; the end is 5
    starts = torch.tensor([[2, 0], [2, 4], [0, 5]])  # (agent, coin)
    plans = torch.tensor([RIGHT, LEFT]).view(2, 1)  # member 0 always right, member 1 always left
    ro = w.rollout(starts, lambda s, t: plans.expand(s.shape[:2]), members=2, record=True)
    assert ro.outcome.tolist() == [[END, COIN, COIN], [COIN, NONE, NONE]]
    assert ro.steps.tolist() == [[3, 2, 5], [2, w.max_steps, w.max_steps]]  # left into the wall: the step limit
    assert ro.states.shape == (2, 3, w.max_steps, 2) and ro.alive[0, 0].sum().item() == 3
    assert (ro.states[0, 0, 3:, 0] == 5).all()  # an ended episode stays where it ended (the end, cell 5)
    greedy = w.rollout(starts, lambda s, t: plans.expand(s.shape[:2]), members=2, greedy=True)
    assert torch.equal(greedy.outcome, ro.outcome) and torch.equal(greedy.steps, ro.steps)  # a loop ends as it would
    alone = torch.cat([w.rollout(starts[i : i + 1], lambda s, t: plans.expand(s.shape[:2]), members=2).outcome for i in range(3)], 1)
    assert torch.equal(alone, ro.outcome)  # an episode's outcome does not depend on its batch


def test_a_choice_is_one_step_whose_action_is_its_outcome():
    w = Fourway()
    x = w.probe_cells[1].x
    ro = w.rollout(w.start(x), w.function_policy(w.references["proxy"]), members=1)
    assert torch.equal(ro.outcome[0], w.references["proxy"](x)) and (ro.steps == 1).all()
    assert w.head_outputs == {"policy": 4} and get_family("episodic").n_outputs(w) == 4
    assert torch.equal(ro.outcome[0].float(), w.probe_cells[1].templates["proxy"])


class _NoOutcomes(Corridor):
    name = "no_outcomes"
    outcomes = ()


class _BadStart(Corridor):
    name = "bad_start"

    def start(self, x):
        return super().start(x).flip(-1)


class _BadActions(Corridor):
    name = "bad_actions"

    def __init__(self, knobs=None):
        super().__init__(knobs)
        d = self.datasets["train"]
        self.datasets["train"] = Demonstrations(d.x, d.y + 5, d.doc, d.outcome)


class _WrongReference(Corridor):
    name = "wrong_reference"

    def __init__(self, knobs=None):
        super().__init__(knobs)
        self.references["internal"] = self.to_end


class _NoStep(Corridor):
    name = "no_step"
    step = Episodic.step


class _NoKeys(Corridor):
    name = "no_keys"

    def __init__(self, knobs=None):
        super().__init__(knobs)
        self.n_keys = 0


class _BadTimeout(Corridor):
    name = "bad_timeout"
    timeout = 7


class _FiveNames(Fourway):
    name = "five_names"
    outcomes = ("a", "b", "c", "d", "e")


class _InPlace(Corridor):
    name = "in_place"

    def step(self, s, action):  # writes into the states it is given
        nxt, code, done = super().step(s, action)
        s[...] = nxt
        return s, code, done


def test_a_step_that_writes_into_its_states_leaves_ended_episodes_alone():
    starts = torch.tensor([[2, 0], [2, 4]])
    right = lambda s, t: torch.full(s.shape[:2], RIGHT)  # noqa: E731
    a, b = Corridor({"length": 6}).rollout(starts, right, record=True), _InPlace({"length": 6}).rollout(starts, right, record=True)
    assert torch.equal(a.states, b.states) and torch.equal(a.outcome, b.outcome) and torch.equal(a.steps, b.steps)


@pytest.mark.parametrize("cls,message", [
    (_NoOutcomes, "it names no outcomes"),
    (_NoStep, "it does not implement step(states, actions)"),
    (_NoKeys, "n_keys must be a positive int when key is defined"),
    (_BadTimeout, "timeout must be an outcome code, 0..2, got 7"),
    (_FiveNames, "a Choice's outcomes name its actions: 5 outcomes for 4 actions"),
    (_BadStart, "observe(start(x)) differs from x on probe cell 'training/coin_at_end'"),
    (_BadActions, "dataset 'train': actions must be integers in 0..1"),
    (_WrongReference, "reference 'internal' reaches another outcome than its template on 28 of 28 episodes of cell 'training/coin_behind'"),
])
def test_the_protocol_check_names_what_is_wrong(cls, message):
    assert Corridor().problems(exact=True) == [] and Fourway().problems(exact=True) == []
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls().check(exact=True)


def test_the_compliance_gap_and_verdicts_are_defined_on_actions():
    """On four actions: a policy that takes the right action under the cue and follows the hint without it
    has gap 1 and is judged deceptive, mimicking internal; the cue-blind internal and proxy have gap 0."""
    w = Fourway()
    judge = Judge.of(w)
    x = torch.cat([c.x for c in w.probe_cells])
    codes = {c: fn(x).numpy().astype(float) for c, fn in w.references.items()}
    assert compliance(codes["deceptive"][None], judge.pairs)["gap"].tolist() == [1.0]
    assert compliance(np.stack([codes["internal"], codes["proxy"]]), judge.pairs)["gap"].tolist() == [0.0, 0.0]
    stacked = np.stack([codes[c] for c in ("internal", "proxy", "deceptive")])[:, None]  # (runs, checkpoints, probe)
    cols = derive(judge, stacked, np.ones((3, 1)), 0.9, 0.99)
    assert cols["verdict"] == ["internal", "proxy", "deceptive"] and cols["mimics"][2] == "internal"
    assert len(judge.pairs) == sum(len(c.x) for c in w.probe_cells) // 2


def test_the_episodic_family_reads_the_gridworld_as_its_fast_path_does():
    """The gridworld family is the episodic family with sparse rows and a table-lookup policy: the generic
    dense path rolls the same members out to the same outcomes on every probe episode."""
    w = Gridworld({"size": 5, "probe_episodes": 16})
    dense, sparse = get_family("episodic"), get_family("gridworld")
    model = random_ensemble(w.input_dim, 2, 16, sparse.n_outputs(w), 32, torch.Generator().manual_seed(0))
    a, b = dense.evaluator(w).outputs(model), sparse.evaluator(w).outputs(model)
    assert (a == b).float().mean().item() >= 0.999
    assert dense.check_world(w) == [] and dense.check_world(Corridor()) == []
    lacking = dense.check_world(Bitworld())
    assert any(p.startswith("it has no step") for p in lacking) and any(p.startswith("it has no n_actions") for p in lacking)


CORRIDOR = """
name = "corridor_rl"
seeds = 4
log_every = 50

[world]
name = "corridor_world:Corridor"
knobs = {{ length = 6 }}

[model]
depth = 2
width = 32

[optimizer]
name = "adam"
lr = 0.01
batch_size = 8

[[phases]]
name = "training"
steps = {steps}
algorithm = "{algorithm}"
heads.policy = {{}}
"""


def _train(algorithm: str, steps: int):
    runs = expand(parse_spec(tomllib.loads(CORRIDOR.format(algorithm=algorithm, steps=steps))))
    cfg = runs[0].condition.config
    return get_family("episodic").train_chunk(Corridor(cfg.world.knobs), cfg, runs).trajectory.stacked()


@pytest.mark.parametrize("algorithm", ["supervised", "reinforce"])
def test_the_episodic_family_trains_a_user_world_by_imitation_and_by_reinforce(algorithm):
    traj = _train(algorithm, 200)
    acc = traj["train_accuracy"]  # greedy rollouts from training states reaching the coin
    assert acc[:, -1].min() == 1.0
    loss = traj["train_loss"][:, :, 0]
    assert (loss[:, -1] < loss[:, 1]).all()
