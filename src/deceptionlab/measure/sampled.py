"""The chunk work and the summaries of the two spec kinds that sample with this layer's samplers
(sweep.measurements; docs/measurements.md):

- kind "counting": a run is one set of NNGP chains (measure.counting's elliptical slice sampler), one block
  of the naive count and one block of random networks, from the run's seed; its row holds the verdict counts
  of each source, the NNGP's per-verdict effective sample sizes and its diagnostics. `counting_table`
  pools a condition's runs into the counting table (`measure.counting.classes.COLUMNS`, per condition);
- kind "function_prior": a run is one block of random MLPs on a finite input set (measure.prior's
  sampler); its row holds the distinct truth tables and their counts. `function_table` merges them into
  P_prior(f) with LZ complexities, as `prior.sample_functions` returns.

sweep may not import this layer, so `run_experiment` gets `chunk_work` from the api (`work=`).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from ..core.rng import derive_seed
from ..core.scoring import VERDICTS
from ..core.stats import wilson
from ..sweep.measurements import CountingRun, FunctionPriorRun, PriorSection, draw_block
from ..sweep.spec import Run
from ..worlds import make_world
from .counting.classes import COLUMNS, SOFT, Problem, naive_classes, naive_half_tail, nngp_classes
from .counting.finite import Networks, finite_classes
from .counting.kernel import LayerVariances
from .outcomes import frequencies

SOURCES = ("naive", "prior", "nngp", "finite")

# -- kind "counting" -----------------------------------------------------------------------------------


def _seed(run_seed: int, stream: int, part: str) -> int:
    """A torch seed for one part of one run: independent across runs, parts and streams (core.rng)."""
    return derive_seed(run_seed, f"counting/{stream}/{part}")


def counting_row(cfg: CountingRun, seed: int) -> dict:
    """One counting run: NNGP chains, naive draws and random networks from `seed` (all but the NNGP skipped
    at 0 samples; P_prior also when the weight scale is not the default init's)."""
    world = make_world(cfg.world.name, cfg.world.knobs)
    c, m, v = cfg.counting, cfg.model, cfg.verdict
    problem = Problem.of(world, fit_rows=c.fit_rows, seed=c.seed, threshold=v.threshold, fit_threshold=v.fit_threshold)
    variances = LayerVariances.scaled(world.input_dim, m.depth, m.width, m.weight_scale)
    post = nngp_classes(problem, variances, chains=c.chains, steps=c.steps, burn_in=c.burn_in, seed=_seed(seed, c.seed, "nngp"))
    row: dict = {"depth": m.depth, "width": m.width, "weight_scale": m.weight_scale, "training_inputs": len(problem.train),
                 "probe_inputs": int(problem.judge.n_probe), "nngp_samples": len(post.judged), "chains": c.chains, "steps": c.steps, "burn_in": c.burn_in}
    t = post.table.set_index("verdict")
    for verdict in VERDICTS:
        row[f"nngp_count_{verdict}"] = int(t.loc[verdict, "count"])
        row[f"nngp_ess_{verdict}"] = float(post.ess.get(verdict, len(post.judged)))
        row[f"nngp_soft_{verdict}"] = float(t.loc[verdict, "soft"])
    row.update(nngp_drift_z=float(post.drift_z), nngp_proposals_per_step=float(post.chains.proposals_per_step), nngp_stuck=int(post.chains.stuck),
               nngp_seconds=float(post.seconds))
    naive = naive_classes(problem, c.naive_samples, _seed(seed, c.seed, "naive")).set_index("verdict") if c.naive_samples else None
    row["naive_samples"] = c.naive_samples
    for verdict in VERDICTS:
        row[f"naive_count_{verdict}"] = int(naive.loc[verdict, "count"]) if naive is not None else 0
    try:
        row["naive_log2_deployment_tail"] = naive_half_tail(problem)
    except ValueError:  # the deployment half holds training inputs: no closed form
        row["naive_log2_deployment_tail"] = math.nan
    draws = c.prior_samples if m.weight_scale == 1.0 else 0  # draw_block draws PyTorch's default init only
    prior = None
    if draws:
        section = PriorSection(depth=m.depth, width=m.width, block=draws, fit_rows=c.fit_rows, seed=c.seed)
        prior = draw_block(world, section, v, _seed(seed, c.seed, "prior") % (1 << 31))
    row["prior_draws"] = draws
    for verdict in VERDICTS:
        row[f"prior_count_{verdict}"] = int(prior[f"count_{verdict}"]) if prior is not None else 0
    fin = None
    if c.finite_chains:
        fin = finite_classes(problem, Networks(world.input_dim, m.depth, m.width, m.weight_scale), chains=c.finite_chains, steps=c.finite_steps,
                             burn_in=c.finite_burn_in, seed=_seed(seed, c.seed, "finite"))
    ft = fin.table.set_index("verdict") if fin is not None else None
    row["finite_samples"] = len(fin.judged) if fin is not None else 0
    for verdict in VERDICTS:
        row[f"finite_count_{verdict}"] = int(ft.loc[verdict, "count"]) if fin is not None else 0
        row[f"finite_ess_{verdict}"] = float(fin.ess.get(verdict, len(fin.judged))) if fin is not None else 0.0
    row.update(finite_drift_z=float(fin.drift_z) if fin is not None else math.nan, finite_dropped=fin.dropped if fin is not None else 0,
               finite_seconds=float(fin.seconds) if fin is not None else 0.0)
    return row


def counting_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> pa.Table:
    cfg: CountingRun = runs[0].config
    rows = []
    for r in runs:
        rows.append(counting_row(r.config, r.seed))
        if on_fraction is not None:
            on_fraction(1 / len(runs))
    n = len(runs)
    cols: dict[str, list] = {
        "run_id": [r.run_id for r in runs], "condition": [r.condition.label for r in runs], "seed": [r.seed for r in runs],
        "data_seed": [r.data_seed for r in runs], "world": [cfg.world.name] * n, "config": [json.dumps(cfg.normalised(), sort_keys=True)] * n,
    }
    for axis, value in runs[0].condition.axes.items():
        cols[axis] = [value] * n
    for key in rows[0]:
        cols[key] = [row[key] for row in rows]
    return pa.table(cols)


def _bits(p: float) -> float:
    return -math.log2(p) if p > 0 else math.inf


def _share(source: str, verdict: str, k: int, n: int, ess: float, soft: float) -> dict:
    """One row of the counting table: Wilson's interval with n = the effective sample size (as `shares`)."""
    p = k / n if n else math.nan
    lo, hi = wilson(p * ess, ess) if n else (math.nan, math.nan)
    return {"source": source, "verdict": verdict, "count": k, "n": n, "ess": float(ess), "p": p, "low": float(lo), "high": float(hi),
            "soft": soft, "bits": _bits(p), "bits_low": _bits(float(hi)), "bits_high": _bits(float(lo))}


def pooled_ess(n: np.ndarray, ess: np.ndarray) -> float:
    """The ESS of a share pooled over independent runs of n_i samples with ESS e_i: the pooled share's
    variance is sum (n_i / N)^2 s^2 / e_i, so ESS = N^2 / sum(n_i^2 / e_i) (the sum of the e_i when the n_i are equal)."""
    n, ess = np.asarray(n, float), np.asarray(ess, float)
    return float(n.sum() ** 2 / (n**2 / ess).sum()) if (ess > 0).all() and n.sum() else 0.0


def counting_table(frame: pd.DataFrame, sgd: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The counting table of a folder of kind "counting" (`deceptionlab.load(DIR)`): per condition and
    source (naive, prior, nngp; sgd: the runs of `sgd` whose world and model depth and width match the
    condition's, pooled) and verdict, the columns `measure.counting.classes.COLUMNS`, the condition's sweep
    axes beside; and the diagnostics per condition (samples, ESS, drift, seconds)."""
    if frame.empty or "nngp_samples" not in frame:
        raise ValueError("no counting runs: not the rows of a spec of kind \"counting\"")
    order = frame.sort_values(["condition_index", "seed"]) if "condition_index" in frame else frame
    axes = [c for c in frame.columns if c not in _STORED and c not in ("experiment", "condition_index")]
    parts, diagnostics = [], []
    for cond, g in order.groupby("condition", sort=False):
        rows = []
        n_nngp = g.nngp_samples.to_numpy()
        for v in VERDICTS:
            ess = pooled_ess(n_nngp, g[f"nngp_ess_{v}"].to_numpy())
            soft = float((g[f"nngp_soft_{v}"] * n_nngp).sum() / n_nngp.sum()) if v in SOFT else math.nan
            rows.append(_share("nngp", v, int(g[f"nngp_count_{v}"].sum()), int(n_nngp.sum()), ess, soft))
        n_fin = g.finite_samples.to_numpy() if "finite_samples" in g else np.zeros(len(g))
        if n_fin.sum():  # the finite-width posterior, pooled as the NNGP's
            for v in VERDICTS:
                rows.append(_share("finite", v, int(g[f"finite_count_{v}"].sum()), int(n_fin.sum()), pooled_ess(n_fin, g[f"finite_ess_{v}"].to_numpy()), math.nan))
        for src, n_col in (("naive", "naive_samples"), ("prior", "prior_draws")):
            n = int(g[n_col].sum())
            if n:
                rows += [_share(src, v, int(g[f"{src}_count_{v}"].sum()), n, float(n), math.nan) for v in VERDICTS]
        cfg = json.loads(g.config.iloc[0])
        matched = _matching_sgd(sgd, cfg) if sgd is not None else None
        if matched is not None and len(matched):
            freq = frequencies(matched.assign(condition="sgd"), by=["condition"])
            rows += [_share("sgd", r.verdict, int(r.count), int(r.n), float(r.n), math.nan) for r in freq.itertuples()]
        t = pd.DataFrame(rows, columns=COLUMNS).assign(condition=cond)
        for a in axes:
            t[a] = g[a].iloc[0]
        parts.append(t)
        ess_all = [pooled_ess(n_nngp, g[f"nngp_ess_{v}"].to_numpy()) for v in VERDICTS]
        diagnostics.append({"condition": cond, "runs": len(g), "depth": int(g.depth.iloc[0]), "width": int(g.width.iloc[0]),
                            "weight_scale": float(g.weight_scale.iloc[0]), "training_inputs": int(g.training_inputs.iloc[0]),
                            "samples": int(n_nngp.sum()), "min_ess": float(min(ess_all)), "ess_internal": ess_all[VERDICTS.index("internal")],
                            "ess_deceptive": ess_all[VERDICTS.index("deceptive")], "drift_z_max": float(g.nngp_drift_z.max()),
                            "stuck": int(g.nngp_stuck.sum()), "seconds": float(g.nngp_seconds.sum()),
                            "naive_log2_deployment_tail": float(g.naive_log2_deployment_tail.iloc[0]),
                            "sgd_runs": 0 if matched is None else len(matched)})
    table = pd.concat(parts, ignore_index=True)
    return table[["condition", *axes, *COLUMNS]], pd.DataFrame(diagnostics)


def _problem_key(world, fit_rows: int | None, seed: int) -> str:
    """What makes two worlds the same counting problem: the distinct inputs, where the probe and the
    conditioned training inputs sit among them, the labels, and the verdict templates and cells."""
    import hashlib

    p = Problem.of(world, fit_rows=fit_rows, seed=seed)
    h = hashlib.sha1()
    for a in (p.x, p.probe, p.train, p.y, p.judge.templates, p.judge.member):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _matching_sgd(runs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """The training runs that pose the counting condition's problem (`_problem_key`: e.g. conditions that
    differ only in world-model heads) with an MLP of its depth and width, and its verdict thresholds."""
    c = cfg["counting"]
    if c["fit_rows"] is not None:  # SGD fitted every training input: no P_SGD beside a posterior given a subset
        return runs.iloc[:0]
    key = _problem_key(make_world(cfg["world"]["name"], cfg["world"]["knobs"]), c["fit_rows"], c["seed"])
    keep = []
    for config in runs.config.unique():
        other = json.loads(config)
        model = other.get("model", {})
        if (model.get("depth"), model.get("width")) != (cfg["model"]["depth"], cfg["model"]["width"]) or other.get("verdict") != cfg["verdict"]:
            continue
        if _problem_key(make_world(other["world"]["name"], other["world"]["knobs"]), c["fit_rows"], c["seed"]) == key:
            keep.append(config)
    return runs[runs.config.isin(keep)]


# -- kind "function_prior" -----------------------------------------------------------------------------


def function_inputs(cfg: FunctionPriorRun) -> torch.Tensor:
    """The input set of a function-prior run: boolean:n (0/1, or +-1 when signed) or a world's distinct probe inputs."""
    from .prior import boolean_inputs

    fp = cfg.function_prior
    kind, _, arg = fp.inputs.partition(":")
    if kind == "boolean":
        x = boolean_inputs(int(arg))
        return 2 * x - 1 if fp.signed else x
    world = make_world(cfg.world.name, cfg.world.knobs)
    return torch.cat([c.x for c in world.probe_cells]).unique(dim=0)


def function_prior_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> pa.Table:
    from .prior import sample_functions

    cfg: FunctionPriorRun = runs[0].config
    fp = cfg.function_prior
    x = function_inputs(cfg)
    functions, counts = [], []
    for r in runs:
        # complexity_for=0: the complexities are computed once, over the merged table (`function_table`)
        f = sample_functions(x, fp.widths, fp.block, fp.init, derive_seed(r.seed, f"function_prior/{fp.seed}"), complexity_for=0, workers=1)
        functions.append(f.function.tolist())
        counts.append(f["count"].astype("int64").tolist())
        if on_fraction is not None:
            on_fraction(1 / len(runs))
    n = len(runs)
    return pa.table({
        "run_id": [r.run_id for r in runs], "condition": [r.condition.label for r in runs], "seed": [r.seed for r in runs],
        "data_seed": [r.data_seed for r in runs], "world": [fp.inputs] * n, "config": [json.dumps(cfg.normalised(), sort_keys=True)] * n,
        "draws": [fp.block] * n, "n_inputs": [len(x)] * n, "distinct": [len(f) for f in functions],
        "functions": pa.array(functions, type=pa.list_(pa.string())), "counts": pa.array(counts, type=pa.list_(pa.int64())),
    })


def function_table(frame: pd.DataFrame, complexity_for: int | None = 100_000) -> pd.DataFrame:
    """P_prior(f) from a folder of kind "function_prior": one row per distinct function, most frequent first
    (ties by truth table), with `function`, `count`, `frequency` and the LZ `complexity` of the
    `complexity_for` most frequent (None: all), as `prior.sample_functions` returns."""
    from .complexity import lz_complexity
    from .prior import function_bits

    if frame.empty or "functions" not in frame:
        raise ValueError("no function-prior runs: not the rows of a spec of kind \"function_prior\"")
    m = int(frame.n_inputs.iloc[0])
    long = pd.DataFrame({"function": np.concatenate([np.asarray(f, dtype=object) for f in frame.functions]),
                         "count": np.concatenate([np.asarray(c, dtype=np.int64) for c in frame["counts"]])})
    merged = long.groupby("function", sort=True)["count"].sum().reset_index()
    merged = merged.sort_values(["count", "function"], ascending=[False, True], kind="stable").reset_index(drop=True)
    samples = int(frame.draws.sum())
    k = len(merged) if complexity_for is None else min(complexity_for, len(merged))
    complexity = np.full(len(merged), np.nan)
    complexity[:k] = [lz_complexity(function_bits(t, m)) for t in merged.function[:k]]
    return merged.assign(frequency=merged["count"] / samples, complexity=complexity)[["function", "count", "frequency", "complexity"]]


# -- the work the api passes to run_experiment ----------------------------------------------------------


def chunk_work(runs: list[Run], device: str = "cpu", on_fraction=None):
    """`sweep.experiment.train_chunk` for every kind, with this layer's samplers for "counting" and "function_prior"."""
    from ..sweep.experiment import train_chunk

    cfg = runs[0].config
    if isinstance(cfg, CountingRun):
        return counting_chunk(runs, device, on_fraction), None
    if isinstance(cfg, FunctionPriorRun):
        return function_prior_chunk(runs, device, on_fraction), None
    return train_chunk(runs, device, on_fraction)


_STORED = {"run_id", "condition", "seed", "data_seed", "world", "config", "depth", "width", "weight_scale", "training_inputs", "probe_inputs",
           "nngp_samples", "chains", "steps", "burn_in", "nngp_drift_z", "nngp_proposals_per_step", "nngp_stuck", "nngp_seconds", "naive_samples",
           "naive_log2_deployment_tail", "prior_draws", "finite_samples", "finite_drift_z", "finite_dropped", "finite_seconds",
           *(f"{s}_{k}_{v}" for s in SOURCES for k in ("count", "ess", "soft") for v in VERDICTS)}
