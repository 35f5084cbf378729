"""The "gridworld" family: the episodic family (families/episodic.py: MLP policies trained by imitation
and by REINFORCE, scored by rolling every member out on every probe episode, on the environment protocol
of worlds.env) with a fast path for the built-in gridworld's one-hot observations: the model reads a state
as sparse rows (its planes' hot columns, then the fixed columns), and a rollout's first layer is the
product of the fixed columns (cue, instruction), computed once per episode, plus the weight rows of the
planes' hot columns, looked up per step. The dynamics are the world's `step`, through `Episodic.rollout`.

Its packed `decisions` are the one-hot outcome of every probe episode, 4 bits each (none, gem, coin,
corner): two runs whose episodes differ on a share d of the probe episodes differ on a share d / 2 of
these bits.
"""

from __future__ import annotations

import torch

from ..models import MLPEnsemble
from ..worlds.gridworld import AGENT, Gridworld
from .base import Need
from .episodic import DISCOUNT, FIT_EPISODES, EpisodicFamily, RolloutEvaluator, head_columns, sample  # noqa: F401  (re-exported)
from .registry import register


def mlp_policy(world: Gridworld, model: MLPEnsemble, s: torch.Tensor, columns: slice, noise: torch.Tensor | None = None):
    """A rollout policy of every member from start states s ((E, 5) or (N, E, 5)): greedy (argmax of the
    action logits in `columns`), or sampled from their softmax with uniforms `noise` (N, E, T). The planes
    of an observation are one-hot, so the first layer is the product of the fixed columns (cue,
    instruction), computed once, plus the weight rows of the planes' hot columns."""
    w1, b1 = model.params[0], model.params[1]
    n, n_in, width = w1.shape
    planes = world.channels["world_state"].stop
    pre = torch.matmul(world.fixed(s), w1[:, planes:]).add_(b1)  # (N, E, width)
    rows = w1.reshape(n * n_in, width)  # index_select of rows: faster than a gather
    member = (torch.arange(n, device=w1.device) * n_in).view(n, 1, 1)
    # the planes' hot columns for the agent in every cell of every episode, looked up at each step
    table = world.hot(s.unsqueeze(-2), torch.arange(world.cells)).flatten(0, -2)  # (episodes * cells, 3)
    absent = (table < 0).any()  # episodes without a coin: their coin column is masked out
    mask, table = (table >= 0).to(w1.dtype), table.clamp(min=0)
    episode = torch.arange(len(table) // world.cells).view(s.shape[:-1]) * world.cells
    layers = [(model.params[2 * i], model.params[2 * i + 1]) for i in range(1, model.depth)]
    w_out, b_out = model.params[-2][..., columns].contiguous(), model.params[-1][..., columns].contiguous()

    def policy(states: torch.Tensor, t: int) -> torch.Tensor:
        at = episode + states[..., AGENT]
        picked = rows.index_select(0, (table[at] + member).flatten()).view(*at.shape, 3, width)
        if absent:
            picked = picked * mask[at].unsqueeze(-1)
        h = picked.sum(2).add_(pre).relu_()
        for w, b in layers:
            h = torch.bmm(h, w).add_(b).relu_()
        logits = torch.bmm(h, w_out).add_(b_out)
        return sample(logits, None if noise is None else noise[..., t])

    return policy


class GridworldFamily(EpisodicFamily):
    name = "gridworld"
    title = "gridworld policies"
    world_protocol = EpisodicFamily.world_protocol + (
        Need("cells", "int", "grid cells an agent can stand on"),
        Need("decode", "method", "observations (n, input_dim) -> states (n, 5)"),
        Need("sparse", "method", "states (and agent cells) -> the observations' hot columns and values"),
        Need("fixed", "method", "states -> the observation's columns that do not move with the agent"),
        Need("hot", "method", "states and agent cells -> the world-state planes' hot columns"),
    )

    def rows(self, world: Gridworld, states: torch.Tensor):
        return world.sparse(states)

    def policy(self, world, model, starts, columns, noise=None):
        return mlp_policy(world, model, starts, columns, noise)


register(GridworldFamily())
