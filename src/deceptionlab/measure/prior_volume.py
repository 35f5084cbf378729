"""Prior volume of alignment classes (claim C5): the share of random parameter draws that implement each.

"Count the models that implement it" (a spec of kind "prior", sweep.measurements): draw random networks of the lab's model family, judge each
with the same verdict rule as trained runs, and report
- P_prior(class): the share of all draws with each verdict;
- P_prior(class | fit): the same share among the draws whose policy fits the training data, found
  by rejection (guess-and-check, Chiang et al. 2023), with the acceptance rate beside it.

Each run of the spec is a block of draws from its own seed; its row holds the block's verdict counts, and
`class_prior_table` sums them over the loaded frame. A random network fits bitworld's 256 training inputs with probability far below anything sampling
can see, so `fit_rows=k` conditions on a fixed random subset of k training inputs instead (the
verdict of an accepted draw then takes its fit flag on those rows). When no draw is accepted the
conditional shares are NaN and the acceptance's Wilson upper bound is what is reported.

`compare_with_sgd` sets these beside P_SGD(class) from a results folder.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..core.scoring import VERDICTS
from ..core.stats import share, wilson
from ..models import random_ensemble  # noqa: F401  (its old home: measure.prior_volume.random_ensemble)
from ..sweep.measurements import PriorSpec, blocks_for, expand_measurement, prior_chunk
from ..worlds import World
from ..worlds.registry import spec_name
from .outcomes import frequencies

COLUMNS = ["verdict", "count", "n", "p", "low", "high"]
FEW = 30  # accepted draws below which the note warns that P_prior(class | fit) is rough


def _shares(counts: dict[str, int], n: int) -> pd.DataFrame:
    rows = []
    for v in VERDICTS:
        k = int(counts.get(v, 0))
        lo, hi = wilson(k, n) if n else (np.nan, np.nan)
        rows.append({"verdict": v, "count": k, "n": n, "p": k / n if n else np.nan, "low": float(lo), "high": float(hi)})
    return pd.DataFrame(rows, columns=COLUMNS)


def class_prior_table(blocks: pd.DataFrame, fit_threshold: float | None = None) -> tuple[pd.DataFrame, dict]:
    """P_prior(verdict) and P_prior(verdict | fit) from a frame of prior blocks (the rows of a "prior" spec:
    `deceptionlab.load(DIR)`, or `prior_blocks`): the verdict counts summed over the blocks.

    Returns (table, acceptance): table has one row per (source, verdict) with source "prior" or
    "prior|fit" and the columns count, n, p, low, high (95% Wilson); acceptance is a dict with
    accepted, samples, rate, low, high, fit_rows and a one-line `note`."""
    if blocks.empty or "draws" not in blocks:
        raise ValueError("no prior draws: not the rows of a spec of kind \"prior\"")
    samples, k = int(blocks.draws.sum()), int(blocks.accepted.sum())
    fit_rows, n_fit = int(blocks.fit_rows.iloc[0]), int(blocks.n_fit.iloc[0])
    if fit_threshold is None:
        fit_threshold = json.loads(blocks.config.iloc[0])["verdict"]["fit_threshold"] if "config" in blocks else 0.95
    every = {v: blocks[f"count_{v}"].sum() for v in VERDICTS}
    fitting = {v: blocks[f"fit_count_{v}"].sum() for v in VERDICTS}
    lo, hi = wilson(k, samples)
    where = f"{fit_rows} of the {n_fit} training inputs" if fit_rows < n_fit else f"all {n_fit} training inputs"
    if k == 0:
        note = f"no draw of {samples:,} fits {where} (accuracy >= {fit_threshold}); acceptance < {hi:.2g} (95% Wilson upper bound)"
    else:
        note = f"{k:,} of {samples:,} draws fit {where} (acceptance {k / samples:.3g}, 95% CI {lo:.2g}-{hi:.2g})"
        if k < FEW:
            note += f"; fewer than {FEW} accepted, so the conditional shares' intervals are wide"
    acceptance = {"accepted": k, "samples": samples, "rate": k / samples, "low": float(lo), "high": float(hi), "fit_rows": fit_rows, "note": note}
    table = pd.concat([_shares(every, samples).assign(source="prior"), _shares(fitting, k).assign(source="prior|fit")])
    return table[["source", *COLUMNS]].reset_index(drop=True), acceptance


def prior_spec(world: World, samples: int, *, depth: int = 2, width: int = 64, seed: int = 0, threshold: float = 0.9,
               fit_threshold: float = 0.95, fit_rows: int | None = None, block: int = 2048, name: str = "prior") -> dict:
    """The spec (parsed TOML) of kind "prior" drawing `samples` networks on `world`: blocks of at most
    `block` draws (the largest size dividing `samples` exactly where there is one, else `samples` rounded
    up to whole blocks: `sweep.measurements.blocks_for`)."""
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    size, runs = blocks_for(samples, largest=block, smallest=min(block, 256))
    prior = {"depth": depth, "width": width, "block": size, "seed": seed}
    if fit_rows is not None:
        prior["fit_rows"] = fit_rows
    return {"kind": "prior", "name": name, "seeds": runs, "world": {"name": spec_name(world), "knobs": world.knobs.model_dump()},
            "prior": prior, "verdict": {"threshold": threshold, "fit_threshold": fit_threshold}}


def prior_blocks(spec: PriorSpec, progress=None) -> pd.DataFrame:
    """The rows of a "prior" spec computed here, without a store (the executors' chunk work, block by block)."""
    runs = expand_measurement(spec)
    rows = []
    for i, r in enumerate(runs):
        rows.append(prior_chunk([r]).to_pandas())
        if progress:
            progress(min((i + 1) * spec.prior.block, len(runs) * spec.prior.block))
    return pd.concat(rows, ignore_index=True)


def class_prior(world: World, samples: int, *, depth: int = 2, width: int = 64, seed: int = 0, threshold: float = 0.9,
                fit_threshold: float = 0.95, fit_rows: int | None = None, block: int = 2048, progress=None) -> tuple[pd.DataFrame, dict]:
    """P_prior(verdict) and P_prior(verdict | fit) for `samples` random draws of the model family on `world`,
    computed directly: the rows a "prior" spec (`prior_spec`) stores, summed by `class_prior_table`."""
    n_fit = len(world.datasets[world.fit_dataset].x)
    if fit_rows is not None and not 1 <= fit_rows <= n_fit:
        raise ValueError(f"fit_rows must be between 1 and {n_fit}, got {fit_rows}")
    raw = prior_spec(world, samples, depth=depth, width=width, seed=seed, threshold=threshold, fit_threshold=fit_threshold,
                     fit_rows=fit_rows, block=block)
    spec = PriorSpec.model_validate(raw)
    return class_prior_table(prior_blocks(spec, progress), fit_threshold)


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
