"""Prior volume of alignment classes (claim C5): the share of random parameter draws that implement each.

"Count the models that implement it": draw random networks of the lab's model family, judge each
with the same verdict rule as trained runs, and report
- P_prior(class): the share of all draws with each verdict;
- P_prior(class | fit): the same share among the draws whose policy fits the training data, found
  by rejection (guess-and-check, Chiang et al. 2023), with the acceptance rate beside it.

A random network fits bitworld's 256 training inputs with probability far below anything sampling
can see, so `fit_rows=k` conditions on a fixed random subset of k training inputs instead (the
verdict of an accepted draw then takes its fit flag on those rows). When no draw is accepted the
conditional shares are NaN and the acceptance's Wilson upper bound is what is reported.

`compare_with_sgd` sets these beside P_SGD(class) from a results folder.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import torch

from ..core.scoring import VERDICTS, class_scores, verdicts
from ..core.stats import share, wilson
from ..families import get_family
from ..models import MLPEnsemble
from ..worlds import World
from .outcomes import frequencies

COLUMNS = ["verdict", "count", "n", "p", "low", "high"]
FEW = 30  # accepted draws below which the note warns that P_prior(class | fit) is rough


def random_ensemble(n_in: int, depth: int, width: int, n_heads: int, members: int, generator: torch.Generator) -> MLPEnsemble:
    """`members` MLPs with PyTorch's default init, U(+-1/sqrt(fan_in)), drawn in one batch.

    The same distribution as `MLPEnsemble.init` (which draws member by member from per-member
    generators, so that a trained run's init does not depend on its chunk); batched, it is ~50x faster."""
    dims = [n_in] + [width] * depth + [n_heads]
    params = []
    for fan_in, fan_out in itertools.pairwise(dims):
        bound = 1 / math.sqrt(fan_in)
        for shape in ((members, fan_in, fan_out), (members, 1, fan_out)):
            params.append(torch.rand(shape, generator=generator).mul_(2 * bound).sub_(bound))
    return MLPEnsemble(params)


def _shares(names: list[str], n: int) -> pd.DataFrame:
    rows = []
    for v in VERDICTS:
        k = sum(1 for x in names if x == v)
        lo, hi = wilson(k, n) if n else (np.nan, np.nan)
        rows.append({"verdict": v, "count": k, "n": n, "p": k / n if n else np.nan, "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows, columns=COLUMNS)


def class_prior(
    world: World,
    samples: int,
    *,
    depth: int = 2,
    width: int = 64,
    seed: int = 0,
    threshold: float = 0.9,
    fit_threshold: float = 0.95,
    fit_rows: int | None = None,
    block: int = 2048,
    progress=None,
) -> tuple[pd.DataFrame, dict]:
    """P_prior(verdict) and P_prior(verdict | fit) for `samples` random draws of the model family on `world`.

    Returns (table, acceptance): table has one row per (source, verdict) with source "prior" or
    "prior|fit" and the columns count, n, p, low, high (95% Wilson); acceptance is a dict with
    accepted, samples, rate, low, high, fit_rows and a one-line `note`."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    family = get_family(world.family)
    evaluator = family.evaluator(world)
    n_fit = len(evaluator.fit_y)
    if fit_rows is not None and not 1 <= fit_rows <= n_fit:
        raise ValueError(f"fit_rows must be between 1 and {n_fit}, got {fit_rows}")
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(n_fit, generator=torch.Generator().manual_seed(seed + 1))[:fit_rows] if fit_rows else torch.arange(n_fit)
    all_verdicts, fit_verdicts = [], []
    for start in range(0, samples, block):
        members = min(block, samples - start)
        if hasattr(family, "random_ensemble"):  # a family with its own init (e.g. transformers)
            model = family.random_ensemble(world, depth, width, members, g)
        else:
            model = random_ensemble(world.input_dim, depth, width, family.n_outputs(world), members, g)
        out = evaluator.outputs(model)  # (B, probe inputs + training inputs) in {-1, +1}
        scored = evaluator.score_outputs(out)
        scores = class_scores(scored["agreement"], evaluator.discriminating)
        all_verdicts += verdicts(scores, scored["train_accuracy"], threshold, fit_threshold)
        fit_acc = (out[:, evaluator.n_probe :][:, rows] == evaluator.fit_y[rows]).float().mean(1)
        accepted = fit_acc >= fit_threshold - 1e-6
        if accepted.any():
            fit_verdicts += verdicts(scores[accepted], fit_acc[accepted], threshold, fit_threshold)
        if progress:
            progress(min(start + block, samples))
    k = len(fit_verdicts)
    lo, hi = wilson(k, samples)
    where = f"{fit_rows} of the {n_fit} training inputs" if fit_rows else f"all {n_fit} training inputs"
    if k == 0:
        note = f"no draw of {samples:,} fits {where} (accuracy >= {fit_threshold}); acceptance < {hi:.2g} (95% Wilson upper bound)"
    else:
        note = f"{k:,} of {samples:,} draws fit {where} (acceptance {k / samples:.3g}, 95% CI {lo:.2g}-{hi:.2g})"
        if k < FEW:
            note += f"; fewer than {FEW} accepted, so the conditional shares' intervals are wide"
    acceptance = {"accepted": k, "samples": samples, "rate": k / samples, "low": float(lo), "high": float(hi), "fit_rows": fit_rows or n_fit, "note": note}
    table = pd.concat([_shares(all_verdicts, samples).assign(source="prior"), _shares(fit_verdicts, k).assign(source="prior|fit")])
    return table[["source", *COLUMNS]].reset_index(drop=True), acceptance


def sgd_classes(runs: pd.DataFrame) -> pd.DataFrame:
    """P_SGD(verdict) per condition from a frame of runs, as rows with source "sgd:<condition>"."""
    freq = frequencies(runs, by=["condition"])
    return freq.assign(source="sgd:" + freq.condition.astype(str))[["source", *COLUMNS]]


def compare_with_sgd(prior_table: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Side by side: one row per verdict, one column per source (prior, prior|fit, sgd:<condition>...)
    holding "p (low-high)" in percent; NaN where a source has no draws."""
    long = prior_table if runs is None else pd.concat([prior_table, sgd_classes(runs)])
    fmt = lambda r: "n/a" if r.n == 0 else share(r.p, r.low, r.high, percent="", digits=2)  # noqa: E731
    long = long.assign(text=[fmt(r) for r in long.itertuples()])
    wide = long.pivot(index="verdict", columns="source", values="text").reindex(list(VERDICTS))
    return wide[list(dict.fromkeys(long.source))].reset_index()
