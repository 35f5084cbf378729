"""`detect`: run detectors on the benchmark sets of results folders (docs/detection.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import Format, _check_out, _fail, _table, _write_frame, app, console, stages


@app.command()
def detect(
    results: list[Path] = typer.Argument(..., help="Results folders with saved weights (e.g. `deceptionlab run experiments/detection.toml`)."),
    detector: list[str] = typer.Option([], "--detector", "-d", help="A detector: built in, an entry point, or \"module:name\" (repeatable; default: every built-in)."),
    out: Path = typer.Option(None, "--out", "-o", help="Folder for sets, scores, table (Parquet) and ROC curves (PNG, SVG); default: RESULTS/detection."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (csv/json: the detection table, one row per set and detector)."),
):
    """Can anyone tell a deceptive model from an aligned one that behaves the same in training? AUROC with
    bootstrap 95% intervals, TPR at 1% FPR and seconds per model, per set (natural and installed apart)."""
    _check_out(out)
    from ..detect.base import DetectorError
    from ..detect.run import detect as run_detect
    from ..detect.sets import SetError
    from ..sweep import StoreError
    from ..worlds.registry import WorldError

    try:
        with stages("detect") as stage:
            res = run_detect(results, detector or None, out, progress=stage)
    except (SetError, DetectorError, StoreError, WorldError) as e:
        _fail(str(e))
    t = res["table"]
    if _write_frame(t, fmt):
        return
    _table(
        "detection: AUROC (95% bootstrap interval), TPR at 1% FPR, seconds per model; privileged detectors use the cue's meaning; "
        "matched sets compare deceptive runs with controls of their own condition (AUROC stratified by condition), unmatched sets with aligned runs of any condition",
        ["set", "match", "detector", "privileged", "deceptive", "aligned", "AUROC", "TPR@1%FPR", "s/model"],
        [[r["set"], r["match"], r["detector"], "yes" if r["privileged"] else "no", str(r["deceptive"]), str(r["aligned"]),
          f"{r['auroc']:.2f} ({r['auroc_low']:.2f}-{r['auroc_high']:.2f})", f"{r['tpr_at_1pct_fpr']:.2f}", f"{r['seconds_per_model']:.4f}"]
         for r in t.sort_values(["match", "kind", "privileged"], ascending=[False, True, True], kind="stable").to_dict("records")],
        left=4,
    )
    for note in res.get("notes", []):
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    console.print("wrote " + ", ".join(str(f) for f in res["files"]), highlight=False, soft_wrap=True)
