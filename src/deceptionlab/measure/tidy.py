"""Tidy long frames of a runs table (one row per observation), for pandas, seaborn and DuckDB users:

- `trajectories(runs)`: run_id, step, phase, quantity, value: every numeric `traj_*` column, one row per
  checkpoint and quantity (the quantity is the column's name without `traj_`: score_internal,
  deploy_score_deceptive, train_accuracy, compliance_gap, decode_situation, loss_policy, ...);
- `cells(runs)`: run_id, cell, situation, spec, region, class, agreement, cell_size: the agreement of each
  run with each class template on each probe cell (the stored `cells` column, unpacked), with the cell's
  size and place from the run's world;
- `decisions(runs)`: run_id, input, cell, situation, spec, region, code: the run's final decision code on
  every probe input (+1 / -1 for one-bit decisions, the outcome index for k-way worlds), in the world's
  probe order (cell after cell, rows of each cell's `x` in order).

docs/results.md defines the stored columns these unpack.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..core.scoring import CLASSES, decision_codes

_NOT_QUANTITIES = ("traj_step", "traj_phase", "traj_verdict", "traj_decisions")


def undeclared_classes(runs: pd.DataFrame) -> list[str]:
    """The classes the runs' world does not tell apart (`World.classes`): their score is NaN in every run."""
    return [c for c in CLASSES if f"score_{c}" in runs and len(runs) and runs[f"score_{c}"].isna().all()]


def trajectories(runs: pd.DataFrame, quantities: list[str] | None = None) -> pd.DataFrame:
    """Every numeric trajectory column of `runs` in long form (module docstring). `quantities`: only these
    (names without `traj_`, e.g. ["score_deceptive", "compliance_gap"])."""
    cols = [c for c in runs.columns if c.startswith("traj_") and c not in _NOT_QUANTITIES]
    if quantities is not None:
        unknown = sorted(set(quantities) - {c.removeprefix("traj_") for c in cols})
        if unknown:
            raise ValueError(f"no trajectory quantity {', '.join(unknown)} (known: {', '.join(sorted(c.removeprefix('traj_') for c in cols))})")
        cols = [f"traj_{q}" for q in quantities]
    parts = []
    for r in runs[["run_id", "traj_step", "traj_phase", *cols]].itertuples(index=False):
        steps, phases = np.asarray(r.traj_step), np.asarray(r.traj_phase, dtype=object)
        for name, values in zip(cols, r[3:]):
            if values is None or (not isinstance(values, (list, np.ndarray)) and pd.isna(values)):
                continue  # a head that never trains has no loss trajectory
            parts.append(pd.DataFrame({"run_id": r.run_id, "step": steps, "phase": phases, "quantity": name.removeprefix("traj_"),
                                       "value": np.asarray(values, dtype=float)}))
    if not parts:
        return pd.DataFrame({"run_id": pd.Series(dtype=str), "step": pd.Series(dtype=int), "phase": pd.Series(dtype=str),
                             "quantity": pd.Series(dtype=str), "value": pd.Series(dtype=float)})
    return pd.concat(parts, ignore_index=True)


def _probe_layouts(runs: pd.DataFrame, facts: dict | None = None) -> dict[str, list]:
    """config -> the world's probe cells (rebuilt once per config): [(name, situation, spec, region, size)].
    `facts`, when given, is filled with config -> {"declared": classes, cell name -> (weight, seen, in_training)}."""
    from ..worlds import declared_classes, make_world, seen_shares

    out = {}
    for config in runs.config.unique():
        cfg = json.loads(config)
        world = make_world(cfg["world"]["name"], cfg["world"]["knobs"])
        out[config] = [(c.name, c.situation, c.spec, c.region, len(c.x)) for c in world.probe_cells]
        if facts is not None:
            facts[config] = {"declared": declared_classes(world), "outcomes": tuple(getattr(world, "outcomes", ())), **{
                c.name: (float(c.weight), seen, bool(c.in_training)) for c, seen in zip(world.probe_cells, seen_shares(world))}}
    return out


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run, probe cell and declared class (`World.classes`): the agreement (the share of the run's
    decisions on the cell that match the class's template), with the cell's situation, spec, region and
    size (inputs), its weight in the class scores, `seen` (the share of its inputs that are inputs of the
    policy's training data, the world's fit dataset), `held_out` (no input seen) and `in_training` (the
    world marks the cell as part of the training distribution). The agreement with `internal` is the
    cell's probe accuracy on the base objective."""
    facts: dict = {}
    layouts = _probe_layouts(runs, facts)
    rows = []
    for r in runs[["run_id", "config", "cells"]].itertuples(index=False):
        place = {name: (sit, spec, region, size) for name, sit, spec, region, size in layouts[r.config]}
        known = facts[r.config]
        for cell in r.cells:
            sit, spec, region, size = place.get(cell["cell"], (None, None, None, np.nan))
            weight, seen, in_training = known.get(cell["cell"], (np.nan, np.nan, None))
            for c in known["declared"]:
                rows.append((r.run_id, cell["cell"], sit, spec, region, c, float(cell[c]), size, weight, seen, seen == 0, in_training))
    return pd.DataFrame(rows, columns=["run_id", "cell", "situation", "spec", "region", "class", "agreement", "cell_size", "weight", "seen",
                                       "held_out", "in_training"])


def decisions(runs: pd.DataFrame) -> pd.DataFrame:
    """Per run and probe input: the final decision code, with the input's cell, situation, spec and region,
    and the code's name (`outcome`): the world's outcome or action name for an episodic world
    (`worlds.env.Episodic.outcomes`), "+1" or "-1" for a decision in {-1, +1}, the answer index otherwise."""
    facts: dict = {}
    layouts = _probe_layouts(runs, facts)
    parts = []
    for config, g in runs.groupby("config", sort=False):
        layout = layouts[config]
        n_probe = sum(size for *_, size in layout)
        packed = np.stack([np.frombuffer(b, np.uint8) for b in g.decisions])
        codes = decision_codes(packed, int(g.n_decisions.iloc[0]), n_probe).astype(np.int64)  # (runs, n_probe)
        member = np.concatenate([np.full(size, i) for i, (*_, size) in enumerate(layout)])
        place = pd.DataFrame([row[:4] for row in layout], columns=["cell", "situation", "spec", "region"]).iloc[member].reset_index(drop=True)
        names = facts[config]["outcomes"]
        k = int(g.n_decisions.iloc[0]) // n_probe
        label = np.array(names if names else ["-1", "+1"] if k == 1 else [str(i) for i in range(k)], dtype=object)
        for run_id, code in zip(g.run_id, codes):
            outcome = label[code] if names or k > 1 else np.where(code > 0, "+1", "-1")
            parts.append(place.assign(run_id=run_id, input=np.arange(n_probe), code=code, outcome=outcome))
    cols = ["run_id", "input", "cell", "situation", "spec", "region", "code", "outcome"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
