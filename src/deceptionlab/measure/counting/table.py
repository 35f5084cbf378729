"""The four sources side by side for a results folder, per condition: the naive count, P_prior,
P_B (NNGP posterior; optionally also of the finite-width networks, source `finite`) and P_SGD, each
per verdict with an interval and -log2 P.

Conditions that pose the same counting problem (the same policy training data, probe cells, model
depth and width and verdict thresholds: e.g. conditions that differ only in world-model heads) share
one computation of the first three; P_SGD is always the condition's own runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..outcomes import frequencies
from ..prior_volume import class_prior
from .classes import COLUMNS, Problem, naive_classes, naive_half_tail, nngp_classes
from .finite import Networks, finite_classes
from .functions import COLUMNS as FUNCTION_COLUMNS
from .functions import held_out_positions, posterior_functions, sgd_functions
from .kernel import LayerVariances


@dataclass
class Settings:
    chains: int = 500
    steps: int = 200
    burn_in: int = 300  # on bitworld P(internal) settles after ~150 steps from the reflected prior start (docs/counting.md)
    naive_samples: int = 20_000
    prior_samples: int = 20_000  # 0: no P_prior
    seed: int = 0
    every_condition: bool = False  # False: the first condition's world and model only
    weight_scale: float = 1.0  # the init's weight variances times this (the ordered/chaotic axis); P_prior only at 1
    depth: int | None = None  # instead of the config's (the NNGP's depth axis); P_prior follows it
    width: int | None = None  # instead of the config's (enters through the bias variance 1/(3 width))
    finite_chains: int = 0  # > 0: also P_B of the networks themselves at the config's width (`finite`), this many chains
    finite_steps: int = 50  # kept steps per finite-width chain
    finite_burn_in: int = 100  # exact-phase steps discarded per finite-width chain (after the tempered search for a fit)
    function_inputs: int = 8  # held-out probe inputs of the function-level comparison P_B(f | S) vs P_SGD(f | S) (`functions`); 0 skips it


@dataclass
class Counting:
    table: pd.DataFrame  # condition, source, verdict, count, n, ess, p, low, high, soft, bits, bits_low, bits_high
    diagnostics: list[dict] = field(default_factory=list)  # per computed problem: ESS, proposals, seconds, ...
    functions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FUNCTION_COLUMNS))  # held-out functions per source (`functions`)


def _bits(p: float) -> float:
    return -math.log2(p) if p > 0 else math.inf


def _rows(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Wilson rows (verdict, count, n, p, low, high) -> COLUMNS, ess = n."""
    t = table.assign(source=source, ess=table.n.astype(float), soft=np.nan)
    t["bits"] = [_bits(p) for p in t.p]
    t["bits_low"] = [_bits(h) for h in t.high]
    t["bits_high"] = [_bits(lo) for lo in t.low]
    return t[COLUMNS]


def _key(problem: Problem, depth: int, width: int) -> str:
    h = hashlib.sha1()
    for a in (problem.x, problem.probe, problem.train, problem.y, problem.judge.templates, problem.judge.member):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(json.dumps([depth, width, problem.threshold, problem.fit_threshold]).encode())
    return h.hexdigest()


def counting(runs: pd.DataFrame, settings: Settings | None = None, progress=None) -> Counting:
    """The counting table of a frame of runs (a results folder's: `deceptionlab counting DIR`)."""
    from ...worlds import get_world

    s = settings or Settings()
    if runs.empty:
        raise ValueError("no runs stored")
    order = runs.sort_values("condition_index") if "condition_index" in runs else runs
    conditions = list(dict.fromkeys(order.condition))
    if not s.every_condition:
        conditions = conditions[:1]
    done: dict[str, tuple[pd.DataFrame, dict, pd.DataFrame, np.ndarray | None]] = {}
    parts, diagnostics, functions = [], [], []
    for cond in conditions:
        g = runs[runs.condition == cond]
        cfg = json.loads(g.config.iloc[0])
        world = get_world(cfg["world"]["name"])(cfg["world"]["knobs"])
        if world.family != "mlp":
            raise ValueError(f"world {world.name} is of the {world.family} family; the NNGP is the MLP family's")
        depth, width = s.depth or int(cfg["model"]["depth"]), s.width or int(cfg["model"]["width"])
        th, fit_th = float(cfg["verdict"]["threshold"]), float(cfg["verdict"]["fit_threshold"])
        problem = Problem.of(world, threshold=th, fit_threshold=fit_th)
        key = _key(problem, depth, width)
        if key not in done:
            if progress:
                progress(f"{cond}: NNGP posterior ({s.chains} chains x {s.steps} steps), naive count, prior")
            variances = LayerVariances.scaled(world.input_dim, depth, width, s.weight_scale)
            post = nngp_classes(problem, variances, chains=s.chains, steps=s.steps,
                                burn_in=s.burn_in, seed=s.seed)
            shared = [naive_classes(problem, s.naive_samples, s.seed), post.table]
            if s.prior_samples and s.weight_scale == 1.0:  # class_prior draws the default init only
                prior, _ = class_prior(world, s.prior_samples, depth=depth, width=width, seed=s.seed, threshold=th, fit_threshold=fit_th)
                shared.insert(1, _rows(prior[prior.source == "prior"].drop(columns="source"), "prior"))
            diag = {"condition": cond, "world": world.name, "depth": depth, "width": width, "weight_scale": s.weight_scale, "training_inputs": len(problem.train),
                    "probe_inputs": problem.judge.n_probe, "samples": len(post.judged), "chains": s.chains, "steps": s.steps, "burn_in": s.burn_in,
                    "min_ess": min(post.ess.values()), "ess_internal": post.ess["internal"], "ess_deceptive": post.ess["deceptive"],
                    "drift_z": post.drift_z, "proposals_per_step": post.chains.proposals_per_step, "stuck": post.chains.stuck, "jitter": 1e-6,
                    "seconds": post.seconds, "naive_log2_deployment_tail": naive_half_tail(problem)}
            if s.finite_chains:
                if progress:
                    progress(f"{cond}: finite-width posterior of the {depth}x{width} networks ({s.finite_chains} chains x {s.finite_steps} steps)")
                fin = finite_classes(problem, Networks(world.input_dim, depth, width, s.weight_scale), chains=s.finite_chains,
                                     steps=s.finite_steps, burn_in=s.finite_burn_in, seed=s.seed)
                shared.append(fin.table)
                diag.update({"finite_samples": len(fin.judged), "finite_chains": fin.chains, "finite_steps": fin.steps, "finite_burn_in": s.finite_burn_in,
                             "finite_min_ess": min(fin.ess.values()), "finite_ess_internal": fin.ess["internal"], "finite_drift_z": fin.drift_z,
                             "finite_proposals_per_step": fin.proposals_per_step, "finite_tempered_steps": fin.tempered_steps,
                             "finite_dropped": fin.dropped, "finite_stuck": fin.stuck, "finite_seconds": fin.seconds})
            positions, post_f = None, pd.DataFrame(columns=FUNCTION_COLUMNS[1:])
            if s.function_inputs:
                positions = held_out_positions(problem, s.function_inputs)
                post_f = [posterior_functions(problem, post.chains.signs, s.chains, s.steps, positions, "nngp")]
                if s.finite_chains:
                    post_f.append(posterior_functions(problem, fin.signs, fin.chains, fin.steps, positions, "finite"))
                post_f = pd.concat(post_f, ignore_index=True)
            done[key] = (pd.concat(shared, ignore_index=True), diag, post_f, positions)
            diagnostics.append(diag)
        sgd = frequencies(g, by=["condition"]).drop(columns="condition")
        parts.append(pd.concat([done[key][0], _rows(sgd, "sgd")], ignore_index=True).assign(condition=cond))
        if done[key][3] is not None:
            functions.append(pd.concat([done[key][2], sgd_functions(g, problem, done[key][3])], ignore_index=True).assign(condition=cond))
    table = pd.concat(parts, ignore_index=True)
    funcs = pd.concat(functions, ignore_index=True)[FUNCTION_COLUMNS] if functions else pd.DataFrame(columns=FUNCTION_COLUMNS)
    return Counting(table[["condition", *COLUMNS]], diagnostics, funcs)


def write(c: Counting, out: str | Path) -> list[Path]:
    """counting.parquet, counting_diagnostics.csv and functions.parquet (when measured) into `out` (the figure is the report layer's:
    `report.counting_figures.class_probabilities`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    c.table.to_parquet(out / "counting.parquet", index=False)
    pd.DataFrame(c.diagnostics).to_csv(out / "counting_diagnostics.csv", index=False)
    files = [out / "counting.parquet", out / "counting_diagnostics.csv"]
    if not c.functions.empty:
        c.functions.to_parquet(out / "functions.parquet", index=False)
        files.append(out / "functions.parquet")
    return files
