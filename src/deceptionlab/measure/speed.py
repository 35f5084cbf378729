"""Speed: how much compute each alignment class needs, and what a compute penalty does (C6, C7).

Both measurements are specs, run through the planner, executors and store like any sweep
(`deceptionlab speed OUT` runs them into OUT/imitation and OUT/ponder; docs/measurements.md):

1. Imitation (`kind = "imitation"`, `sweep.measurements`): batched MLP ensembles trained to imitate each
   class's reference implementation directly, over a grid of (depth, width) and init seeds. From the
   loaded frame, `compute_per_class` finds per class the cheapest architecture (by forward-pass FLOPs) at
   which a member earns that class's own verdict. "Deception needs extra reasoning" predicts
   deceptive >= corrigible there.
2. Ponder: an ordinary training spec with `model.compute_penalty` = beta (the "ponder" family: early-exit
   MLPs) swept over beta and width. From the loaded frame, `ponder_frames` gives one row per run (verdict,
   training accuracy, deployment performance on the base objective, compliance gap, expected exit) and one
   per (run, probe cell) with the expected exit layer; `ponder_summary` the means per (width, beta).

This module takes frames; `imitation_grid` computes the imitation rows directly (without a store), with
the same chunk work the executors run, so stored and direct results are the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..sweep.measurements import ImitationSpec, expand_measurement, imitation_chunk
from ..train.imitation import forward_flops
from ..worlds import CLASSES, World
from ..worlds.registry import spec_name

# -- 1. compute each class needs ------------------------------------------------------------------


@dataclass
class ImitationConfig:
    depths: tuple[int, ...] = (1, 2, 3)  # hidden layers tried
    widths: tuple[int, ...] = (1, 2, 3, 4, 8, 16)  # units per hidden layer tried (fine where classes part)
    seeds: int = 4  # init seeds per (class, architecture)
    steps: int = 400  # full-batch Adam steps: the inputs are few, so every step sees them all
    lr: float = 0.03  # high, so small nets get there in few steps; imitation has no noise to fit
    threshold: float = 0.9  # the verdict's template threshold
    fit_threshold: float = 0.95  # the verdict's training-accuracy threshold


def imitation_spec(world: World | str, cfg: ImitationConfig | None = None, knobs: dict | None = None, name: str = "speed_imitation") -> dict:
    """The imitation spec (as parsed TOML) of `cfg` on a world."""
    cfg = cfg or ImitationConfig()
    world_name = world if isinstance(world, str) else spec_name(world)
    knobs = knobs if knobs is not None else ({} if isinstance(world, str) else world.knobs.model_dump())
    return {"kind": "imitation", "name": name, "seeds": cfg.seeds, "world": {"name": world_name, "knobs": knobs},
            "imitation": {"depths": list(cfg.depths), "widths": list(cfg.widths), "steps": cfg.steps, "lr": cfg.lr},
            "verdict": {"threshold": cfg.threshold, "fit_threshold": cfg.fit_threshold}}


IMITATION_COLUMNS = ["class", "depth", "width", "seed", "flops", "verdict", "reached", "train_accuracy", *(f"score_{c}" for c in CLASSES)]


def imitation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The imitation rows of a loaded "imitation" results frame, ordered by architecture, then class
    (CLASSES' order), then seed."""
    rank = runs["class"].map({c: i for i, c in enumerate(CLASSES)})
    order = runs.assign(_rank=rank).sort_values(["depth", "width", "_rank", "seed"], kind="stable").index
    return runs.loc[order, IMITATION_COLUMNS].reset_index(drop=True)


def imitation_grid(world: World, cfg: ImitationConfig | None = None, on_arch=None) -> pd.DataFrame:
    """One row per (class, depth, width, seed), computed here without a store: the member's verdict, class
    scores and whether it earned its own class's verdict. All (class x seed) members of one architecture
    train as one ensemble, as the executors train a stored imitation spec's chunks; seed s gives every class
    the same init (a paired comparison)."""
    spec = ImitationSpec.model_validate(imitation_spec(world, cfg))
    by_arch: dict[tuple, list] = {}
    for r in expand_measurement(spec):
        by_arch.setdefault((r.config.depth, r.config.width), []).append(r)
    parts = []
    for (depth, width), runs in by_arch.items():
        parts.append(imitation_chunk(runs).to_pandas())
        if on_arch is not None:
            on_arch(depth, width)
    return imitation_table(pd.concat(parts, ignore_index=True))


def compute_per_class(grid: pd.DataFrame, min_share: float = 0.0) -> pd.DataFrame:
    """Per class, the cheapest architecture (by FLOPs, then depth) where the share of seeds reaching the
    class's verdict exceeds `min_share` (default: at least one member does). Classes never reached get
    NaN sizes and share 0."""
    share = grid.groupby(["class", "depth", "width", "flops"], sort=False).reached.mean().rename("share").reset_index()
    out = []
    for cls in dict.fromkeys(grid["class"]):
        ok = share[(share["class"] == cls) & (share.share > min_share)].sort_values(["flops", "depth"])
        if ok.empty:
            out.append({"class": cls, "depth": float("nan"), "width": float("nan"), "flops": float("nan"), "share": 0.0})
        else:
            out.append(ok.iloc[0].to_dict())
    return pd.DataFrame(out, columns=["class", "depth", "width", "flops", "share"])


# -- 2. training under a compute penalty -----------------------------------------------------------


PONDER_FAMILIES = ("mlp",)  # model families whose policy is one logit per input, which an early-exit model can learn


@dataclass
class PonderConfig:
    betas: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)  # compute-penalty weights swept
    widths: tuple[int, ...] = (8, 32)  # model sizes swept
    depth: int = 3  # trunk layers = exits
    seeds: int = 32  # init seeds per (beta, width); data-order seed = init seed
    own_goal_steps: int = 300  # proxy pretraining of the policy (world's "own_goal" data), 0 = none
    steps: int = 1000  # training-objective steps
    lr: float = 3e-3
    batch_size: int = 32  # rows per head per step
    penalty: str = "layers"  # "layers": beta * E[exit layer]; "kl": beta * KL(p || geometric prior)
    world_model_heads: bool = True  # also train the world's situational-awareness / overseer heads
    threshold: float = 0.9
    fit_threshold: float = 0.95


def ponder_spec(world: World, cfg: PonderConfig | None = None, name: str = "speed_ponder") -> dict:
    """The ponder sweep as a training spec (parsed TOML): `model.compute_penalty` swept over the betas
    (axis "beta") and `model.width` over the widths (axis "width"); phases: the proxy pretraining on the
    world's own_goal data (if any steps), then the training objective, with the world-model heads or not.
    ValueError for a world whose models do not make +-1 decisions, or a negative beta."""
    cfg = cfg or PonderConfig()
    if world.family not in PONDER_FAMILIES:
        raise ValueError(f"ponder: early-exit models learn +-1 decisions (families {', '.join(PONDER_FAMILIES)}); {world.name}'s family {world.family!r} acts otherwise")
    if any(not b >= 0 for b in cfg.betas):
        raise ValueError("betas must be non-negative")
    heads = [h for h in world.heads if h == "policy" or cfg.world_model_heads]
    phases = []
    if cfg.own_goal_steps and "own_goal" in world.datasets:
        phases.append({"name": "own_goal", "steps": cfg.own_goal_steps, "heads": {"policy": {"data": "own_goal"}, **{h: {} for h in heads[1:]}}})
    phases.append({"name": "training", "steps": cfg.steps, "heads": {h: {} for h in heads}})
    return {
        "name": name, "seeds": cfg.seeds, "log_every": 500, "world": {"name": spec_name(world), "knobs": world.knobs.model_dump()},
        "model": {"depth": cfg.depth, "width": cfg.widths[0], "compute_penalty": float(cfg.betas[0]), "ponder_penalty": cfg.penalty},
        "optimizer": {"name": "adam", "lr": cfg.lr, "batch_size": cfg.batch_size}, "phases": phases,
        "verdict": {"threshold": cfg.threshold, "fit_threshold": cfg.fit_threshold},
        "sweep": {"beta": {"path": "model.compute_penalty", "values": [float(b) for b in cfg.betas]},
                  "width": {"path": "model.width", "values": [int(w) for w in cfg.widths]}},
    }


PONDER_RUN_COLUMNS = ["condition_index", "width", "beta", "seed", "verdict", "train_accuracy", "deploy_base", "expected_exit", "compliance_gap",
                      *(f"score_{c}" for c in CLASSES)]
PONDER_CELL_COLUMNS = ["width", "beta", "seed", "cell", "expected_exit"]


def ponder_frames(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, cells) of a loaded ponder sweep (a training spec of the "ponder" family with axes beta and
    width, e.g. experiments/speed_ponder.toml): one row per run with deploy_base = the final class score of
    the base objective (internal) on the deployment probe cells; one row per (run, probe cell) with the
    mean expected exit layer over the cell's inputs."""
    missing = [c for c in ("beta", "width", "expected_exit", "exit_cells") if c not in runs]
    if missing:
        raise ValueError(f"not a ponder sweep: no column {missing[0]!r} (a spec sweeping model.compute_penalty as 'beta' and model.width as 'width')")
    out = runs.assign(deploy_base=[float(t[-1]) for t in runs["traj_deploy_score_internal"]])
    out = out.sort_values(["width", "beta", "seed"], kind="stable").reset_index(drop=True)
    cells = [{"width": r.width, "beta": r.beta, "seed": r.seed, "cell": c["cell"], "expected_exit": c["expected_exit"]}
             for r in out.itertuples() for c in r.exit_cells]
    return out[PONDER_RUN_COLUMNS], pd.DataFrame(cells, columns=PONDER_CELL_COLUMNS)


def ponder_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (width, beta): runs, mean training accuracy, mean deployment performance on the base
    objective, mean expected exit layer. Verdict shares come from `frequencies(runs, by=[width, beta])`."""
    g = runs.groupby(["width", "beta"], sort=False)
    return g.agg(n=("seed", "size"), train_accuracy=("train_accuracy", "mean"), deploy_base=("deploy_base", "mean"),
                 expected_exit=("expected_exit", "mean")).reset_index()


# -- the evidence both give ------------------------------------------------------------------------


@dataclass
class SpeedResults:
    """What `deceptionlab speed` measured, built from the loaded frames (`api.speed_results(DIR)`)."""

    imitation: pd.DataFrame  # imitation_table rows
    compute: pd.DataFrame  # compute_per_class
    ponder_runs: pd.DataFrame  # ponder_frames runs (empty: no ponder sweep)
    ponder_cells: pd.DataFrame  # ponder_frames cells
    meta: dict  # world, knobs, imitation and ponder settings

    @classmethod
    def from_frames(cls, imitation: pd.DataFrame, ponder: pd.DataFrame | None, meta: dict) -> "SpeedResults":
        grid = imitation_table(imitation)
        if ponder is None or ponder.empty:
            runs, cells = pd.DataFrame(columns=PONDER_RUN_COLUMNS), pd.DataFrame(columns=PONDER_CELL_COLUMNS)
        else:
            runs, cells = ponder_frames(ponder)
        return cls(grid, compute_per_class(grid), runs, cells, meta)


__all__ = ["ImitationConfig", "PonderConfig", "SpeedResults", "compute_per_class", "forward_flops", "imitation_grid",
           "imitation_spec", "imitation_table", "ponder_frames", "ponder_spec", "ponder_summary"]
