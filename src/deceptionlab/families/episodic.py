"""The "episodic" family: MLP policies with k discrete actions on any world that follows the environment
protocol (`worlds.env.Episodic`), trained by imitation and by REINFORCE, scored by rolling every member
out on every probe episode. One-step worlds (`worlds.env.Choice`: a k-way choice) are episodes of one step.

The model is the lab's `MLPEnsemble` whose readout holds, head after head in the world's order, the
action logits of an action head (a head trained on `Demonstrations`: the policy, an overseer model) or
the one logit of a binary head (e.g. situational awareness). A phase trains each of its heads
- by imitation ("supervised"): cross-entropy on the demonstrated action (action heads) or logistic
  loss on the +-1 target (binary heads), on per-member minibatches of the head's dataset; or
- by REINFORCE (the phase's `algorithm = "reinforce"`, policy head only): each member rolls out
  `batch_size` episodes from start states drawn from the head's dataset, sampling its actions; the
  reward is DISCOUNT^(steps - 1) for reaching the outcome the dataset's demonstrator reaches, else 0;
  the gradient is that of -(return - the member's batch-mean return) * sum_t log pi(a_t | s_t).
  Its logged loss is 1 - the batch's mean return.
All members step together; each draws its minibatches, start states and action noise from its own
generators (the run's data seed), so a member's run does not depend on its chunk.

The evaluator rolls the greedy policy (argmax of the action logits) out on every probe episode and on
FIT_EPISODES training states: a run's outputs are outcome codes (the world's `outcomes`), scored
against the templates like any decisions; training accuracy is the share of training episodes that
reach the demonstrated outcome. Its packed `decisions` are the one-hot outcome of every probe episode,
len(outcomes) bits each.

How the model reads a state is the family's `rows`: the dense observation here; a subclass may feed
sparse rows instead (the gridworld family's one-hot planes) and roll out faster (`policy`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.rng import generator
from ..core.scoring import pack_decisions
from ..judge.cells import CellScorer, probe_accuracy
from ..models import MLPEnsemble
from ..train import optim
from ..train.loop import Phase, Step
from ..worlds.env import Demonstrations, Episodic, Rollout
from .base import Family, Need
from .mlp import perturb
from .registry import FAMILIES, register

DISCOUNT = 0.95  # per step: a shorter way to the rewarded outcome earns more
FIT_EPISODES = 128  # training states rolled out for the fit flag (a fixed random subset)
PROBE_ROWS = 256  # decodable rows each linear probe is fitted on, and as many held out
EVAL_MEMBERS = 256  # members rolled out at once when scoring (bounds memory)

Rows = tuple[torch.Tensor, ...]
"""How a model reads states: (x,) dense observations (..., input_dim), or (columns, values) (..., k) sparse."""


def head_columns(world: Episodic) -> dict[str, slice]:
    """Readout columns of each head, in the world's head order (the policy's come first)."""
    out, start = {}, 0
    for h in world.heads:
        out[h] = slice(start, start + world.head_outputs[h])
        start += world.head_outputs[h]
    return out


def forward(model: MLPEnsemble, rows: Rows):
    """Logits (N, R, outputs) of rows (N, R, ...) and what `backward` needs."""
    return model.forward(rows[0]) if len(rows) == 1 else model.forward_sparse(*rows)


def backward(model: MLPEnsemble, rows: Rows, state, dz: torch.Tensor) -> list[torch.Tensor]:
    return model.backward(state, dz) if len(rows) == 1 else model.backward_sparse(state, dz)


def sample(logits: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
    """Greedy actions (argmax) or, with uniforms `noise` (same shape minus the last axis), softmax samples."""
    if noise is None:
        return logits.argmax(-1)
    cdf = logits.softmax(-1).cumsum(-1)
    return (cdf < noise[..., None]).sum(-1).clamp_(max=logits.shape[-1] - 1)


class RolloutEvaluator(CellScorer):
    """Scores members by their greedy rollouts: outcome codes on every probe episode, then on the fit
    episodes; plus the linear decodability of the world's decodables from the trunk."""

    def __init__(self, world: Episodic, family: "EpisodicFamily | None" = None, device="cpu"):
        fit = world.datasets[world.fit_dataset]
        pick = torch.randperm(len(fit.x), generator=torch.Generator().manual_seed(0))[:FIT_EPISODES]
        super().__init__(world, fit.outcome[pick], device)
        self.world, self.family = world, family if family is not None else FAMILIES[world.family]
        self.starts = world.start(torch.cat([c.x for c in world.probe_cells] + [fit.x[pick]])).to(device)  # states (E, d)
        self.n_codes = len(world.outcomes)
        self.n_decisions = self.n_codes * self.n_probe
        self.policy = head_columns(world)["policy"]
        # decodables over the same inputs share one trunk pass and one ridge solve
        self.decodable_names = list(world.decodables)
        groups: dict[int, list] = {}
        for i, d in enumerate(world.decodables.values()):
            groups.setdefault(id(d.x), []).append((i, d))
        self.decode = []
        for members in groups.values():
            x = members[0][1].x
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: 2 * PROBE_ROWS]
            y = torch.stack([d.y[perm].float() for _, d in members], 1)
            self.decode.append((x[perm].to(device), [i for i, _ in members], y.to(device), len(perm) // 2))

    def rollout(self, model: MLPEnsemble) -> Rollout:
        return self.world.rollout(self.starts, self.family.policy(self.world, model, self.starts, self.policy), model.n_members, greedy=True)

    def outputs(self, model: MLPEnsemble) -> torch.Tensor:
        """Outcome codes of every member on every probe episode then every fit episode: (N, M) float."""
        parts = []
        for i in range(0, model.n_members, EVAL_MEMBERS):
            part = MLPEnsemble([p[i : i + EVAL_MEMBERS] for p in model.params])
            parts.append(self.rollout(part).outcome)
        return torch.cat(parts).float()

    def __call__(self, model: MLPEnsemble) -> dict[str, torch.Tensor]:
        codes = self.outputs(model)
        out = self.score_outputs(codes)
        onehot = F.one_hot(codes[:, : self.n_probe].long(), self.n_codes).flatten(1)  # (N, codes * probe episodes)
        out["decisions"] = pack_decisions(onehot * 2.0 - 1)
        if self.decode:
            dec = torch.empty(model.n_members, len(self.decodable_names), device=codes.device)
            for x, which, y, n_fit in self.decode:
                dec[:, which] = probe_accuracy(model.trunk(x), torch.arange(len(x)), y, n_fit)
            out["decodability"] = dec
        return out

    def score_function(self, fn) -> dict[str, torch.Tensor]:
        """Score a plain function of observations (n, input_dim) -> actions (n,) (a reference policy) as a
        one-member ensemble, by rolling it out."""
        codes = self.world.rollout(self.starts, self.world.function_policy(fn), greedy=True).outcome
        return self.score_outputs(codes.float())


# -- training ---------------------------------------------------------------------------------------------
class _Entry:
    """One head trained in a phase: its columns, data, loss weight and how it learns."""

    def __init__(self, world: Episodic, phase: str, head: str, data: str, weight: float, reinforce: bool):
        ds = world.datasets[data]
        self.head, self.index, self.columns, self.weight = head, list(world.heads).index(head), head_columns(world)[head], weight
        self.actions = world.head_outputs[head] > 1
        self.reinforce = reinforce and head == "policy"
        if self.actions != isinstance(ds, Demonstrations):
            kind = "demonstrations (actions)" if self.actions else "+-1 targets"
            raise ValueError(f"phase {phase!r}: head {head!r} needs {kind}; dataset {data!r} has none")
        self.x, self.y = ds.x, ds.y
        self.outcome = ds.outcome if self.actions else None


def _supervised(logits: torch.Tensor, y: torch.Tensor, actions: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row loss (N, b) and its gradient w.r.t. the logits (N, b, k): cross-entropy on action indices y,
    or the logistic loss on +-1 targets y."""
    if actions:
        logp = logits.log_softmax(-1)
        target = F.one_hot(y.long(), logits.shape[-1]).float()
        return -(logp * target).sum(-1), logp.exp() - target
    yz = y * logits[..., 0]
    return F.softplus(-yz), (-y * torch.sigmoid(-yz)).unsqueeze(-1)


class EpisodicSteps(Step):
    """The family's step for one phase (`train.loop.run_phases`): imitation and REINFORCE heads in one
    forward and backward pass. Each block's action noise is drawn when the loop begins it, member by
    member from the rollout generators; its losses are per-row means (`loss_rows` 1)."""

    loss_rows = 1

    def __init__(self, family: "EpisodicFamily", world: Episodic, model: MLPEnsemble, opt, phase: Phase, xs: torch.Tensor, ys: torch.Tensor,
                 batch_size: int, rollout_generators: list[torch.Generator]):
        heads = list(world.heads)
        self.reinforce = phase.algorithm == "reinforce"
        self.entries = [_Entry(world, phase.name, heads[h.head], h.dataset, h.weight, self.reinforce) for h in phase.heads]
        self.states = world.start(xs)
        self.rows = family.rows(world, self.states)  # every pooled row as the model reads it
        self.ys = ys
        self.outcomes = torch.cat([e.outcome if e.reinforce else torch.zeros(len(e.x), dtype=torch.long) for e in self.entries])
        self.family, self.world, self.model, self.opt, self.batch_size, self.generators = family, world, model, opt, batch_size, rollout_generators
        self.noise, self.s = None, 0

    def begin_block(self, k: int) -> None:
        if self.reinforce:
            self.noise = torch.stack([torch.rand(k, self.batch_size, self.world.max_steps, generator=g) for g in self.generators])
        self.s = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        noise = self.noise[:, self.s] if self.reinforce else None
        self.s += 1
        return self._step(idx, noise)

    def _episodes(self, e: _Entry, starts: torch.Tensor, target: torch.Tensor, noise: torch.Tensor):
        """Roll out the sampling policy from per-member start states (N, B, d). Returns the R steps each member
        took (the steps of all its episodes, padded to the most any member took) as the model reads them,
        the actions as one-hots (N, R, actions), each step's weight in the REINFORCE gradient (its episode's
        advantage / B; 0 for padding; (N, R)), and the loss 1 - mean return (N,)."""
        world = self.world
        ro = world.rollout(starts, self.family.policy(world, self.model, starts, e.columns, noise), record=True)
        ret = torch.where(ro.outcome == target, DISCOUNT ** (ro.steps - 1).float(), 0.0)  # (N, B)
        advantage = ret - ret.mean(1, keepdim=True)
        n, b, t = ro.alive.shape
        alive = ro.alive.flatten(1)  # (N, B * T)
        steps = torch.sort((~alive).to(torch.uint8), dim=1, stable=True).indices[:, : int(alive.sum(1).max())]  # taken steps first
        states = ro.states.flatten(1, 2).gather(1, steps.unsqueeze(-1).expand(-1, -1, ro.states.shape[-1]))
        actions = ro.actions.flatten(1).gather(1, steps)
        chosen = F.one_hot(actions, e.columns.stop - e.columns.start).float()
        scale = (advantage.unsqueeze(-1) * ro.alive).flatten(1).gather(1, steps) / b
        return self.family.rows(world, states), chosen, scale, 1 - ret.mean(1)

    def _step(self, idx: torch.Tensor, noise) -> torch.Tensor:
        """One optimisation step of every member on its rows idx (N, heads * batch) of the pooled data: the
        REINFORCE episodes are rolled out first, then every head's rows go through one forward and one
        backward pass. Returns the per-head losses (N, heads)."""
        model, b = self.model, self.batch_size
        losses = torch.zeros(model.n_members, len(self.world.heads))
        parts, episodes = [], {}
        for i, e in enumerate(self.entries):
            rows = idx[:, i * b : (i + 1) * b]
            if e.reinforce:
                read, chosen, scale, losses[:, e.index] = self._episodes(e, self.states[rows], self.outcomes[rows], noise)
                episodes[i] = (chosen, scale)
            else:
                read = tuple(r[rows] for r in self.rows)
            parts.append((read, rows))
        batch = tuple(torch.cat([read[j] for read, _ in parts], 1) for j in range(len(self.rows)))
        z, state = forward(model, batch)
        dz = torch.zeros_like(z)
        start = 0
        for i, (e, (read, rows)) in enumerate(zip(self.entries, parts)):
            span = slice(start, start + read[0].shape[1])
            logits = z[:, span, e.columns]
            if i in episodes:
                chosen, scale = episodes[i]
                d = (logits.softmax(-1) - chosen) * scale.unsqueeze(-1)
            else:
                per_row, d = _supervised(logits, self.ys[rows], e.actions)
                losses[:, e.index], d = per_row.mean(1), d / b
            dz[:, span, e.columns] = d * e.weight
            start = span.stop
        self.opt.step(backward(model, batch, state, dz))
        return losses


# -- the family -----------------------------------------------------------------------------------------
class EpisodicFamily(Family):
    name = "episodic"
    title = "episodic policies"
    algorithms = ("supervised", "reinforce")
    devices = ("cpu",)
    world_protocol = (
        Need("head_outputs", "dict", "head -> readout columns: the action logits of an action head, 1 for a binary head"),
        Need("n_actions", "int", "actions of the policy"),
        Need("max_steps", "int", "the longest episode"),
        Need("rollout", "method", "rolls a batched policy out from start states: outcomes, steps, and what it did"),
        Need("start", "method", "start observations (E, input_dim) -> states (E, d)"),
        Need("observe", "method", "states (..., d) -> observations (..., input_dim)"),
        Need("step", "method", "states, actions -> next states, outcome codes, done"),
        Need("function_policy", "method", "a function of observations -> a rollout policy (references)"),
    )

    # -- how the model reads states and acts (a subclass may go faster) -----------------------------------
    def rows(self, world: Episodic, states: torch.Tensor) -> Rows:
        """States (..., d) as the model reads them: the dense observations."""
        return (world.observe(states).float(),)

    def policy(self, world: Episodic, model: MLPEnsemble, starts: torch.Tensor, columns: slice, noise: torch.Tensor | None = None):
        """A rollout policy of every member: greedy (argmax of the action logits in `columns`), or sampled
        from their softmax with uniforms `noise` (N, E, T)."""

        def act(states: torch.Tensor, t: int) -> torch.Tensor:
            x = self.rows(world, states)[0]
            if x.dim() == 2:
                x = x.expand(model.n_members, -1, -1)
            h = x
            for i in range(model.depth):
                h = torch.bmm(h, model.params[2 * i]).add_(model.params[2 * i + 1]).relu_()
            logits = torch.bmm(h, model.params[-2][..., columns]).add_(model.params[-1][..., columns])
            return sample(logits, None if noise is None else noise[..., t])

        return act

    # -- what a family supplies -------------------------------------------------------------------------
    def n_outputs(self, world: Episodic) -> int:
        return sum(world.head_outputs[h] for h in world.heads)

    def evaluator(self, world: Episodic, device: str = "cpu") -> RolloutEvaluator:
        return RolloutEvaluator(world, self, device)

    def policy_loss(self, world: Episodic, model: MLPEnsemble) -> torch.Tensor:
        """Each member's policy loss on its training data: the mean cross-entropy of the demonstrated actions, (N,)."""
        fit = world.datasets[world.fit_dataset]
        logits = model.logits(fit.x)[..., head_columns(world)["policy"]]
        return -logits.log_softmax(-1).gather(-1, fit.y.long().expand(len(logits), -1).unsqueeze(-1)).squeeze(-1).mean(-1)

    def imitation_data(self, world: Episodic) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """What imitating each class's reference means (measure.speed): every state some reference policy
        passes through on the evaluator's episodes (probe and fit), each distinct state once, with every
        implementable class's action there, and the outputs an imitator needs (the action logits)."""
        starts = RolloutEvaluator(world, self).starts
        seen = []
        for fn in world.references.values():
            ro = world.rollout(starts, world.function_policy(fn), record=True)
            seen.append(world.observe(ro.states[0][ro.alive[0]]).float())
        x = torch.cat(seen).unique(dim=0)
        return x, {c: fn(x).float() for c, fn in world.references.items()}, world.n_actions

    def check_world(self, world) -> list[str]:
        problems = super().check_world(world)
        if not problems:
            problems = [f"head_outputs has no entry for head {h!r}" for h in world.heads if h not in world.head_outputs]
        if not problems and not getattr(world, "outcomes", ()):
            problems = ["it names no outcomes (the outcome codes' names, e.g. the actions of a one-step choice)"]
        return problems

    def init(self, world, config, runs, device="cpu") -> MLPEnsemble:
        gens = [generator(r.seed, "init") for r in runs]
        return MLPEnsemble.init(world.input_dim, config.model.depth, config.model.width, self.n_outputs(world), gens)

    def perturb(self, model, generators, scale) -> None:
        perturb(model, generators, scale)

    def make_step(self, world, config, model, runs, phases, device):
        opt = config.optimizer
        optimizer = optim.make_optimizer(opt.name, model.params, opt.lr, opt.momentum, opt.weight_decay)
        rollout_generators = [generator(r.data_seed, "rollout") for r in runs]
        return lambda phase, xs, ys: EpisodicSteps(self, world, model, optimizer, phase, xs, ys, opt.batch_size, rollout_generators)


register(EpisodicFamily())
