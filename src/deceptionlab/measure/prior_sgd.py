"""P_SGD(f) against P_prior(f) on a Boolean input space (Mingard et al. 2021, "Is SGD a Bayesian sampler?").

Train many networks of one architecture on a training subset S of the inputs labelled by a target
function, record the function each lands on over ALL inputs, and set its frequency beside the
prior's conditional frequency P_prior(f | S) = P_prior(f) / P_prior(fits S), read off the sampled
function table (`prior.sample_functions`): the functions there whose bits on S match the target.
If SGD samples roughly from the Bayesian posterior, the two agree on a log-log plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..models import MLPEnsemble
from ..train import HeadData, Phase, train
from .prior import from_hex, hex_bits, pack_bits, to_hex


def training_subset(m: int, size: int, seed: int) -> torch.Tensor:
    """A fixed random subset of `size` of the m input indices, sorted."""
    if not 1 <= size <= m:
        raise ValueError(f"training subset size must be between 1 and {m}, got {size}")
    return torch.randperm(m, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def sgd_functions(
    x: torch.Tensor,
    target: str,
    subset: torch.Tensor,
    *,
    depth: int = 2,
    width: int = 40,
    runs: int = 256,
    steps: int = 500,
    lr: float = 0.01,
    optimizer: str = "adam",
    seed: int = 0,
) -> tuple[pd.DataFrame, float]:
    """Train `runs` MLPs (the lab's `MLPEnsemble` and trainer, PyTorch default init) on x[subset] labelled by
    the hex truth table `target`, full batch; return (functions, fit rate): the functions the runs that fit
    S exactly land on, with counts and P_SGD(f | S), and the share of runs that fit."""
    m = len(x)
    y = torch.from_numpy(from_hex(target, m).astype(np.float32)) * 2 - 1  # {-1, +1} for the trainer's loss
    xs, ys = x[subset].float(), y[subset]
    gens = [torch.Generator().manual_seed(seed * 100_003 + i) for i in range(runs)]
    model = MLPEnsemble.init(x.shape[1], depth, width, 1, gens)
    data_gens = [torch.Generator().manual_seed(seed * 100_003 + runs + i) for i in range(runs)]
    train(model, [Phase("fit", steps, [HeadData(0, xs, ys, 1.0)])], optimizer=optimizer, lr=lr, batch_size=len(subset),
          data_generators=data_gens, log_every=10**9, evaluate=lambda _: {})
    bits = model.logits(x.float())[..., 0] > 0  # (runs, m)
    fits = (bits[:, subset] == (ys > 0)).all(1)
    keys, counts = np.unique(pack_bits(bits[fits]).numpy(), axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    table = pd.DataFrame({"function": to_hex(keys[order], m), "sgd_count": counts[order]})
    table["p_sgd"] = table.sgd_count / max(int(fits.sum()), 1)
    return table, float(fits.float().mean())


def prior_given_subset(functions: pd.DataFrame, target: str, subset: torch.Tensor, m: int) -> tuple[pd.DataFrame, int]:
    """The prior's functions that agree with `target` on `subset`, with P_prior(f | S); and how many draws fit S."""
    cols = subset.numpy()
    fits = (hex_bits(list(functions.function), m)[:, cols] == from_hex(target, m)[cols]).all(1)
    kept = functions[fits][["function", "count"]].rename(columns={"count": "prior_count"})
    total = int(kept.prior_count.sum())
    return kept.assign(p_prior=kept.prior_count / max(total, 1)).reset_index(drop=True), total


def compare_functions(prior_fit: pd.DataFrame, sgd: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Join P_SGD(f|S) and P_prior(f|S) on f (outer; absent = 0) and correlate log10 of both over f seen by both."""
    both = prior_fit.merge(sgd, on="function", how="outer").fillna({"prior_count": 0, "p_prior": 0.0, "sgd_count": 0, "p_sgd": 0.0})
    seen = both[(both.p_prior > 0) & (both.p_sgd > 0)]
    if len(seen) >= 3:
        r = float(np.corrcoef(np.log10(seen.p_prior), np.log10(seen.p_sgd))[0, 1])
    else:
        r = float("nan")
    # the share of SGD's mass on functions the prior sampled at all: how much of the comparison is covered
    covered = float(both.loc[both.p_prior > 0, "p_sgd"].sum())
    return both.sort_values(["p_sgd", "p_prior"], ascending=False).reset_index(drop=True), {
        "log_pearson": r, "functions_in_both": len(seen), "sgd_mass_covered": covered
    }
