"""Loss barriers: is there a hill on the straight line between two runs' final weights?

Runs that ended in the same basin (linear mode connectivity) have no barrier between them; runs that
SGD carried to different solutions usually do. Comparing pairs with the same verdict against pairs
with different verdicts says whether the classes are separate basins. Needs the final weights, which a
spec stores with `save_weights = true`.

The loss is the policy's loss on its training data (the fit dataset; its model family says which:
logistic on +-1 decisions, cross-entropy on demonstrated actions), the quantity every aligned class
minimises alike. barrier = max over alpha of L((1-a) theta_A + a theta_B) minus the
straight line between L(theta_A) and L(theta_B).
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..core.stats import Z95
from ..families import get_family
from ..models import MLPEnsemble
from ..worlds import get_world

ALPHAS = 11  # points on the line, ends included


def unflatten(blob: bytes, n_in: int, depth: int, width: int, n_heads: int) -> list[torch.Tensor]:
    """Stored float32 bytes -> [W_1, b_1, ..., W_head, b_head] of one member (no model axis)."""
    flat = torch.from_numpy(np.frombuffer(blob, dtype=np.float32).copy())
    fans = [n_in] + [width] * depth + [n_heads]
    shapes = [s for a, b in zip(fans[:-1], fans[1:]) for s in ((a, b), (1, b))]
    sizes = [a * b for a, b in shapes]
    if sum(sizes) != len(flat):
        raise ValueError(f"stored weights hold {len(flat)} numbers, the config's model needs {sum(sizes)}")
    return [p.view(s) for p, s in zip(flat.split(sizes), shapes)]


def barrier_heights(theta_a: list[torch.Tensor], theta_b: list[torch.Tensor], x: torch.Tensor | None = None, y: torch.Tensor | None = None,
                    alphas: int = ALPHAS, loss: Callable[[MLPEnsemble], torch.Tensor] | None = None, build: Callable = MLPEnsemble) -> torch.Tensor:
    """theta_*: per-parameter (P, ...) stacks of P pairs. Returns (P,) barrier heights, all pairs and all
    points of the line evaluated as one ensemble. The loss: `loss(ensemble) -> (members,)`, or by default
    the policy head's logistic loss on x (M, n_in), y (M,) in {-1, +1}. `build`: parameter list -> ensemble
    (an MLP's by default)."""
    a = torch.linspace(0, 1, alphas)
    params = [((1 - a).view(1, -1, *[1] * (p.dim() - 1)) * p.unsqueeze(1) + a.view(1, -1, *[1] * (p.dim() - 1)) * q.unsqueeze(1)).flatten(0, 1) for p, q in zip(theta_a, theta_b)]
    model = build(params)
    values = loss(model) if loss is not None else F.softplus(-y * model.logits(x)[..., 0]).mean(-1)  # (P * alphas,)
    values = values.view(-1, alphas)
    line = (1 - a) * values[:, :1] + a * values[:, -1:]
    return (values - line).max(1).values.clamp_min(0)


def loss_barriers(runs: pd.DataFrame, weights: dict[str, bytes], by: list[str], pairs: int = 32, seed: int = 0) -> pd.DataFrame:
    """Per condition, up to `pairs` random pairs of runs with the same final verdict and as many with
    different verdicts: one row per pair with its barrier height. `weights`: run_id -> stored final
    weights (`Store.weights`); runs without them are left out, so no weights give an empty table."""
    runs = runs[runs.run_id.isin(weights)]
    rng = np.random.default_rng(seed)
    out = []
    for key, g in runs.groupby(by, sort=False):
        key = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        g = g.reset_index(drop=True)
        if len(g) < 2:
            continue
        cfg = json.loads(g.config.iloc[0])
        world = get_world(cfg["world"]["name"])(cfg["world"]["knobs"])
        family = get_family(world.family)
        shape = (world.input_dim, cfg["model"]["depth"], cfg["model"]["width"], family.n_outputs(world))
        i, j = np.triu_indices(len(g), 1)
        same = g.verdict.to_numpy()[i] == g.verdict.to_numpy()[j]
        chosen = [rng.permutation(np.flatnonzero(same == s))[:pairs] for s in (True, False)]
        idx = np.concatenate(chosen)
        if not len(idx):
            continue
        if hasattr(family, "unflatten"):  # a family whose weights are not an MLP's (e.g. transformers)
            flat = lambda side: torch.stack([torch.from_numpy(np.frombuffer(weights[g.run_id[k]], dtype=np.float32).copy()) for k in side[idx]])  # noqa: E731
            ma, mb = (family.unflatten(world, cfg["model"]["depth"], cfg["model"]["width"], flat(side)) for side in (i, j))
            names = list(ma.params_by_name)
            heights = barrier_heights(ma.params, mb.params, loss=lambda m: family.policy_loss(world, m), build=lambda ps: type(ma)(dict(zip(names, ps))))
        else:
            stacks = [[unflatten(weights[g.run_id[k]], *shape) for k in side[idx]] for side in (i, j)]
            theta = [[torch.stack(ps) for ps in zip(*side)] for side in stacks]
            heights = barrier_heights(theta[0], theta[1], loss=lambda m: family.policy_loss(world, m))
        for k, h in zip(idx, heights.tolist()):
            a, b = g.iloc[i[k]], g.iloc[j[k]]
            out.append({**key, "run_a": a.run_id, "run_b": b.run_id, "verdict_a": a.verdict, "verdict_b": b.verdict, "same_verdict": bool(same[k]), "barrier": h})
    return pd.DataFrame(out)


def barrier_summary(pairs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per condition and pair kind (same / different verdict): pairs, mean barrier with a normal 95%
    interval, median, and the share of pairs with a barrier above 0.01 nats (not linearly connected)."""
    if pairs.empty:
        return pd.DataFrame(columns=[*by, "pairs_of", "pairs", "mean", "low", "high", "median", "p_barrier"])
    rows = []
    for key, g in pairs.groupby([*by, "same_verdict"], sort=False):
        *cond, same = key
        b = g.barrier.to_numpy()
        half = Z95 * b.std(ddof=1) / np.sqrt(len(b)) if len(b) > 1 else np.nan
        rows.append(
            {
                **dict(zip(by, cond)), "pairs_of": "same verdict" if same else "different verdicts", "pairs": len(b),
                "mean": b.mean(), "low": b.mean() - half, "high": b.mean() + half, "median": float(np.median(b)), "p_barrier": float((b > 0.01).mean()),
            }
        )
    return pd.DataFrame(rows)
