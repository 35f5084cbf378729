"""Path events: when, along its training path, a run came to know its situation, when the base
objective generalised, when its final verdict was reached, and how often it changed course.

Reads the trajectory columns of a results table (one row per run); pure pandas/numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.stats import wilson
from ..worlds import CLASSES
from .barriers import barrier_summary, loss_barriers
from .path_dependence import path_dependence_and_curves, sensitivity

SITUATION_THRESHOLD = 0.95  # held-out probe accuracy at which "the model knows it is in training"


def _first(steps: np.ndarray, hit: np.ndarray) -> float:
    idx = np.flatnonzero(hit)
    return float(steps[idx[0]]) if len(idx) else np.nan


def path_events(
    runs: pd.DataFrame, threshold: float = 0.9, situation_threshold: float = SITUATION_THRESHOLD, situation: str = "situation"
) -> pd.DataFrame:
    """One row per run: run_id, sa_step, objective_step, first, verdict_step, derailments.

    - sa_step: first checkpoint where the decodable named `situation` (bitworld: "situation", the
      cue itself, or "situation_x_state", the cue combined with the state) is linearly decodable from
      the trunk at `situation_threshold` or better (NaN when the world has no such decodable or never);
    - objective_step: first checkpoint where the internal or corrigible template reaches `threshold`
      on the deployment probes (the base objective, or the pointer to it, generalises);
    - first: which came first ("situation", "objective", "same checkpoint", "neither");
    - verdict_step: the checkpoint from which the verdict equals the final verdict to the end;
    - derailments: how many times the leading class (highest class score) changed.
    """
    rows = []
    column = f"traj_decode_{situation}"
    has_sa = column in runs
    for r in runs.itertuples(index=False):
        steps = np.asarray(r.traj_step, dtype=float)
        sa = _first(steps, np.asarray(getattr(r, column)) >= situation_threshold) if has_sa else np.nan
        aligned = np.maximum(np.asarray(r.traj_deploy_score_internal), np.asarray(r.traj_deploy_score_corrigible))
        obj = _first(steps, aligned >= threshold)
        if np.isnan(sa) and np.isnan(obj):
            first = "neither"
        elif np.isnan(obj) or (not np.isnan(sa) and sa < obj):
            first = "situation"
        elif np.isnan(sa) or obj < sa:
            first = "objective"
        else:
            first = "same checkpoint"
        verdicts = list(r.traj_verdict)
        k = len(verdicts) - 1
        while k > 0 and verdicts[k - 1] == verdicts[-1]:
            k -= 1
        scores = np.stack([np.asarray(getattr(r, f"traj_score_{c}")) for c in CLASSES], 1)  # (T, classes)
        leading = scores.argmax(1)
        rows.append(
            {
                "run_id": r.run_id,
                "sa_step": sa,
                "objective_step": obj,
                "first": first,
                "verdict_step": float(steps[k]),
                "derailments": int((leading[1:] != leading[:-1]).sum()),
            }
        )
    return pd.DataFrame(rows)


def path_summary(runs: pd.DataFrame, by: list[str], **kw) -> pd.DataFrame:
    """Per condition: n, P(situation first) with its 95% Wilson interval over the runs where at least
    one of the two events happened (`n_events`; a run where neither did says nothing about the
    order), median event steps, mean derailments. This is claim C1's table ("a model learns its
    situation before the objective")."""
    events = runs[["run_id", *by]].merge(path_events(runs, **kw), on="run_id")
    out = []
    for key, g in events.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        n = len(g)
        n_events = int((g["first"] != "neither").sum())
        k = int((g["first"] == "situation").sum())
        lo, hi = wilson(k, n_events) if n_events else (np.nan, np.nan)
        out.append(
            {
                **dict(zip(by, key)),
                "n": n,
                "n_events": n_events,
                "p_situation_first": k / n_events if n_events else np.nan,
                "low": float(lo),
                "high": float(hi),
                "median_sa_step": g.sa_step.median(),
                "median_objective_step": g.objective_step.median(),
                "p_objective_never": float(g.objective_step.isna().mean()),
                "median_verdict_step": g.verdict_step.median(),
                "mean_derailments": g.derailments.mean(),
            }
        )
    return pd.DataFrame(out)


# -- gain per step (C2, C3) ---------------------------------------------------------------------------
def _loss_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("traj_loss_") and runs[c].notna().any()]


def gain_curves(runs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per condition, head and checkpoint: the loss gain per step since the previous checkpoint of the
    same phase (median and quartiles over runs) and the mean loss. A checkpoint's loss is the mean over
    the steps since the one before, so the gain is between consecutive interval means. Claim C2 reads
    these curves for the proxy (the policy in own-goal pretraining) against the world-model heads."""
    out = []
    for key, g in runs.groupby(by, sort=False):
        key = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        steps = np.asarray(g.traj_step.iloc[0], dtype=float)
        phase = np.asarray(g.traj_phase.iloc[0])
        same = (phase[1:] == phase[:-1]) & (steps[1:] > steps[:-1])
        for col in _loss_columns(g):
            loss = np.array([np.asarray(v, dtype=float) for v in g[col]])  # (R, T)
            gain = (loss[:, :-1] - loss[:, 1:]) / np.maximum(steps[1:] - steps[:-1], 1)
            for t in np.flatnonzero(same):
                x = gain[:, t]
                if np.isnan(x).all():
                    continue
                q = np.nanpercentile(x, [25, 50, 75])
                out.append({**key, "head": col.removeprefix("traj_loss_"), "phase": phase[t + 1], "step": int(steps[t + 1]),
                            "gain_per_step": q[1], "gain_low": q[0], "gain_high": q[2], "loss": float(np.nanmean(loss[:, t + 1]))})
    return pd.DataFrame(out)


def run_returns(runs: pd.DataFrame, by: list[str], share: float = 0.9) -> pd.DataFrame:
    """One row per run, phase span and head: the gain per step in the phase's first interval, the total
    loss drop in the phase, and the steps into the phase by which `share` of that drop was made
    (`steps_to_<share>pct`, NaN when the loss did not drop). What `returns_summary` summarises and C2 pools."""
    col_at = f"steps_to_{int(share * 100)}pct"
    out = []
    for key, g in runs.groupby(by, sort=False):
        key = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        steps = np.asarray(g.traj_step.iloc[0], dtype=float)
        phase = np.asarray(g.traj_phase.iloc[0])
        bounds = np.flatnonzero(np.r_[True, phase[1:] != phase[:-1]])  # contiguous spans: a name may recur
        for span, (lo, hi) in enumerate(zip(bounds, np.r_[bounds[1:], len(phase)])):
            name, idx = phase[lo], np.arange(lo, hi)
            idx = idx[steps[idx] > 0]  # step 0 has no loss yet
            if len(idx) < 2:
                continue
            start = steps[idx[0] - 1] if idx[0] > 0 else 0.0
            for col in _loss_columns(g):
                loss = np.array([np.asarray(v, dtype=float)[idx] for v in g[col]])  # (R, t)
                if np.isnan(loss).all():
                    continue
                drop = loss[:, :1] - loss  # (R, t) drop since the first interval
                total = drop[:, -1]
                reached = drop >= share * total[:, None]
                at = np.where(total > 0, steps[idx][reached.argmax(1)] - start, np.nan)
                first_gain = (loss[:, 0] - loss[:, 1]) / (steps[idx[1]] - steps[idx[0]])
                out.append(pd.DataFrame({"run_id": g.run_id.to_numpy(), **{a: v for a, v in key.items()}, "phase": name, "span": span,
                                         "head": col.removeprefix("traj_loss_"), "first_gain_per_step": first_gain, "total_drop": total, col_at: at}))
    if not out:
        return pd.DataFrame(columns=["run_id", *by, "phase", "span", "head", "first_gain_per_step", "total_drop", col_at])
    return pd.concat(out, ignore_index=True)


def returns_summary(runs: pd.DataFrame, by: list[str], share: float = 0.9) -> pd.DataFrame:
    """Diminishing returns per condition, phase and head: the gain per step in the phase's first
    interval, the total loss drop in the phase, and the steps into the phase by which `share` of that
    drop was made (median and quartiles over runs: `run_returns`). Returns that diminish faster reach
    the share sooner."""
    col_at = f"steps_to_{int(share * 100)}pct"
    per_run = run_returns(runs, by, share)
    out = []
    for key, g in per_run.groupby([*by, "span", "head"], sort=False):
        at = g[col_at].to_numpy(float)
        q = np.nanpercentile(at, [25, 50, 75]) if not np.isnan(at).all() else [np.nan] * 3
        out.append({**dict(zip(by, key[: len(by)])), "phase": g.phase.iloc[0], "head": key[-1], "runs": len(g),
                    "first_gain_per_step": _nanmedian(g.first_gain_per_step.to_numpy(float)), "total_drop": _nanmedian(g.total_drop.to_numpy(float)),
                    col_at: q[1], "steps_low": q[0], "steps_high": q[2]})
    return pd.DataFrame(out)


def _nanmedian(a: np.ndarray) -> float:
    """Median of the finite values; NaN, without a warning, when there are none (e.g. every run
    stopped early, so later intervals have no training loss)."""
    a = a[~np.isnan(a)]
    return float(np.median(a)) if len(a) else float("nan")


def run_paths(runs: pd.DataFrame, by: list[str], **kw) -> pd.DataFrame:
    """One row per run: its condition (`by`), final verdict, `path_events` (sa_step, objective_step,
    first, verdict_step, derailments) and the training accuracy gained per step until the final verdict
    holds (`accuracy_gain_per_step`, NaN when it held from step 0). The per-run rows the claims pool
    (C1, C3); `path_summary` and `class_paths` are their per-condition summaries."""
    events = runs[["run_id", *by, "verdict", "traj_step", "traj_train_accuracy"]].merge(path_events(runs, **kw), on="run_id")
    rate = []
    for s, a, v in zip(events.traj_step, events.traj_train_accuracy, events.verdict_step):
        s, a = np.asarray(s, dtype=float), np.asarray(a, dtype=float)
        k = int(np.searchsorted(s, v))
        rate.append((a[k] - a[0]) / s[k] if s[k] > 0 else np.nan)
    return events.drop(columns=["traj_step", "traj_train_accuracy"]).assign(accuracy_gain_per_step=rate)


def class_paths(runs: pd.DataFrame, by: list[str], **kw) -> pd.DataFrame:
    """Claim C3 per condition and final verdict: how long the path to the verdict is (the step from
    which it held to the end; median and quartiles), and the training accuracy gained per step along it."""
    events = run_paths(runs, by, **kw)
    out = []
    for key, g in events.groupby([*by, "verdict"], sort=False):
        rate = g.accuracy_gain_per_step.to_numpy(float)
        q = np.percentile(g.verdict_step, [25, 50, 75])
        out.append({**dict(zip([*by, "verdict"], key)), "runs": len(g), "path_length": q[1], "path_low": q[0], "path_high": q[2],
                    "accuracy_gain_per_step": float(np.nanmean(rate)) if not np.isnan(rate).all() else np.nan,
                    "derailments": float(g.derailments.mean())})
    return pd.DataFrame(out)


def default_situation(runs: pd.DataFrame) -> str:
    """The decodable that means "knows its situation": the situation combined with the state where the
    world has one (a raw cue bit is linearly readable from an untrained trunk), else the situation."""
    return "situation_x_state" if "traj_decode_situation_x_state" in runs else "situation"


def condition_axes(axes: list[str], runs: pd.DataFrame) -> list[str]:
    """The columns that name a condition: the sweep's axes (`Store.axes()`) present in `runs`, or
    `condition` when there are none."""
    return [a for a in axes if a in runs.columns] or ["condition"]


PATH_TABLES = ("events", "runs", "returns", "run_returns", "classes", "path_dependence", "sensitivity", "barriers", "curves", "gains")


def path_tables(runs: pd.DataFrame, weights, by: list[str], *, threshold: float = 0.9, situation: str | None = None,
                barrier_pairs: int = 32) -> dict[str, pd.DataFrame]:
    """Every table of training paths and path dependence ({name: DataFrame}, names PATH_TABLES), from a
    frame of runs and their stored weights (`Store.weights(runs.run_id)`, None where none were saved).
    `situation`: the decodable whose linear decodability means "the model knows its situation" (C1;
    default `default_situation`)."""
    situation = situation or default_situation(runs)
    tables = {
        "events": path_summary(runs, by, threshold=threshold, situation=situation),
        "runs": run_paths(runs, by, threshold=threshold, situation=situation),
        "returns": returns_summary(runs, by),
        "run_returns": run_returns(runs, by),
        "classes": class_paths(runs, by, threshold=threshold, situation=situation),
        "path_dependence": None,  # with "curves", below, in one pass
        "sensitivity": sensitivity(runs, by) if by != ["condition"] else pd.DataFrame(),
        "curves": None,
        "gains": gain_curves(runs, by),
    }
    tables["path_dependence"], tables["curves"] = path_dependence_and_curves(runs, by)
    tables["barriers"] = barrier_summary(loss_barriers(runs, weights, by, pairs=barrier_pairs), by)
    return tables
