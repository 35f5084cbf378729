"""Running detectors on benchmark sets: score every model once per detector (batched over the models of a
world setting and size), then AUROC, TPR at 1% FPR and cost per set, and the files `deceptionlab detect`
writes (docs/detection.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..families import get_family
from ..measure.barriers import unflatten
from ..models import MLPEnsemble
from ..sweep import Store
from ..worlds import make_world
from .base import BUILTIN, Detector, DetectorError, Inputs
from .registry import get_detector
from .scores import roc_curve, score_row
from .sets import ALIGNED_GAP, DECEPTIVE_GAP, build_sets

FAMILIES = ("mlp", "transformer")  # the families whose models the detectors read


def default_detectors() -> list[str]:
    from . import builtin  # noqa: F401

    return list(BUILTIN)


def load_models(sets: pd.DataFrame):
    """(group key, world, family, ensemble of the group's distinct runs, their run ids, seeds) per world
    setting and size: an MLPEnsemble (mlp family) or a TransformerEnsemble (transformer family)."""
    runs = sets.drop_duplicates("run_id")
    for key, g in runs.groupby(["world", "knobs", "depth", "width"], sort=False):
        cfg = json.loads(g.config.iloc[0])
        world = make_world(cfg["world"]["name"], cfg["world"]["knobs"])
        family = g.family.iloc[0]
        if family not in FAMILIES:
            raise DetectorError(f"{world.name} runs are of the {family} family; the detectors read {' and '.join(FAMILIES)} models")
        blobs: dict[str, bytes] = {}
        for folder, f in g.groupby("folder"):
            blobs.update(Store(folder).weights(f.run_id))
        depth, width = int(key[2]), int(key[3])
        if family == "transformer":
            flat = torch.from_numpy(np.stack([np.frombuffer(blobs[r], dtype=np.float32) for r in g.run_id]).copy())
            model = get_family("transformer").unflatten(world, depth, width, flat)
        else:
            members = [unflatten(blobs[r], world.input_dim, depth, width, len(world.heads)) for r in g.run_id]
            model = MLPEnsemble([torch.stack(ps).contiguous() for ps in zip(*members)])
        yield key, world, family, model, list(g.run_id), [int(s) for s in g.seed]


def score_models(sets: pd.DataFrame, detectors: list[Detector], explicit: bool = True, progress=None) -> tuple[pd.DataFrame, dict[str, float], list[str]]:
    """Per (run, detector) scores, seconds per model per detector, and notes: a detector that does not apply
    to a group's family is left out there with its one-line reason (a DetectorError if it was asked for by
    name, `explicit`, and applies to no group)."""
    rows, seconds, models, notes = [], {d.name: 0.0 for d in detectors}, {d.name: 0 for d in detectors}, []
    stage = progress or (lambda _: None)
    stage(f"loading the weights of {len(sets):,} models")
    groups = list(load_models(sets))
    families = {g[2] for g in groups}
    for d in detectors:
        if explicit and not any(d.applies(f) for f in families):
            raise DetectorError(d.refuse(sorted(families)[0]))
    for i, (_, world, family, model, ids, seeds) in enumerate(groups):
        inputs = Inputs.of(world, seeds, family)
        for d in detectors:
            if not d.applies(family):
                notes.append(d.refuse(family))
                continue
            stage(f"group {i + 1} of {len(groups)} ({len(ids):,} {family} models): detector {d.name}")
            t = time.perf_counter()
            s = d(model, inputs)
            seconds[d.name] += time.perf_counter() - t
            models[d.name] += len(ids)
            rows += [{"run_id": r, "detector": d.name, "privileged": d.privileged, "score": float(v)} for r, v in zip(ids, s)]
    return pd.DataFrame(rows), {k: v / max(models[k], 1) for k, v in seconds.items()}, list(dict.fromkeys(notes))


def summarise(sets: pd.DataFrame, scores: pd.DataFrame, seconds: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """One row per set x detector: match, kind, world, family, size, counts, AUROC with its interval
    (stratified by condition on a matched set), TPR at 1% FPR, cost."""
    merged = sets[["set", "match", "kind", "world", "family", "depth", "width", "label", "stratum", "run_id"]].merge(scores, on="run_id")
    out = []
    for (name, det), g in merged.groupby(["set", "detector"], sort=False):
        pos, neg, first = g[g.label == 1], g[g.label == 0], g.iloc[0]
        matched = first.match == "matched"
        strata = (pos.stratum.to_numpy(), neg.stratum.to_numpy()) if matched else (None, None)
        out.append({"set": name, "match": first.match, "kind": first.kind, "world": first.world, "family": first.family, "depth": int(first.depth),
                    "width": int(first.width), "conditions": int(g.stratum.nunique()) if matched else 0, "detector": det, "privileged": bool(first.privileged),
                    **score_row(pos.score.to_numpy(), neg.score.to_numpy(), seed, *strata), "seconds_per_model": seconds[det]})
    return pd.DataFrame(out)


def plot_roc(sets: pd.DataFrame, scores: pd.DataFrame, path: Path) -> list[Path]:
    """One panel per set, one ROC curve per detector; written as PNG and SVG beside `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    merged = sets[["set", "label", "run_id"]].merge(scores, on="run_id")
    names = list(dict.fromkeys(merged.set))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        g = merged[merged.set == name]
        for det, d in g.groupby("detector", sort=False):
            fpr, tpr = roc_curve(d.score[d.label == 1].to_numpy(), d.score[d.label == 0].to_numpy())
            ax.plot(fpr, tpr, label=det + (" (privileged)" if d.privileged.iloc[0] else ""), ls="--" if d.privileged.iloc[0] else "-")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        ax.set(title=name, xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    written = []
    for ext in ("png", "svg"):
        p = path.with_suffix(f".{ext}")
        fig.savefig(p, dpi=120)
        written.append(p)
    plt.close(fig)
    return written


def detect(folders, detectors: list[str] | None = None, out: str | Path | None = None, deceptive_gap: float = DECEPTIVE_GAP,
           aligned_gap: float = ALIGNED_GAP, seed: int = 0, progress=None) -> dict:
    """Build the benchmark sets of `folders`, run the detectors (names, entry points or "module:name"; all
    built-ins by default) and write sets.parquet, scores.parquet, table.parquet and roc.png / roc.svg into
    `out` (default: the first folder's `detection/`). Returns {"table", "scores", "sets", "files"}.
    `progress(stage)` is called as each stage begins (the CLI shows it)."""
    folders = [Path(f) for f in (folders if isinstance(folders, (list, tuple)) else [folders])]
    chosen = [get_detector(n) for n in (detectors or default_detectors())]
    stage = progress or (lambda _: None)
    sets = build_sets(folders, deceptive_gap, aligned_gap)  # before the first stage line: a folder it refuses is one line
    stage(f"benchmark sets of {', '.join(map(str, folders))}: {len(sets):,} models")
    scores, seconds, notes = score_models(sets, chosen, explicit=bool(detectors), progress=progress)
    stage("AUROC with bootstrap intervals, ROC curves")
    table = summarise(sets, scores, seconds, seed)
    out = Path(out) if out is not None else folders[0] / "detection"
    out.mkdir(parents=True, exist_ok=True)
    sets.drop(columns=["config"]).to_parquet(out / "sets.parquet", index=False)
    scores.merge(sets[["set", "match", "kind", "label", "run_id", "stratum", "pair"]], on="run_id").to_parquet(out / "scores.parquet", index=False)
    table.to_parquet(out / "table.parquet", index=False)
    files = [out / "sets.parquet", out / "scores.parquet", out / "table.parquet", *plot_roc(sets, scores, out / "roc")]
    return {"table": table, "scores": scores, "sets": sets, "files": files, "notes": notes}
