"""`interventions`: each intervention's effect on P(deceptive) and P(aligned), and its price."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from ._common import Format, _ci, _fail, _table, _write_frame, app, console


def _pp(d: float, lo: float, hi: float) -> str:
    """A change of a proportion in percentage points with its interval: "-41 (-55 to -27)"."""
    return "-" if d != d else f"{100 * d:+.0f} ({100 * lo:+.0f} to {100 * hi:+.0f})"


def _pm(d: float, lo: float, hi: float, fmt: str) -> str:
    """A change of a mean with its symmetric (Welch) interval: "+0.028 ± 0.001"."""
    if d != d:
        return "-"
    return format(d, fmt) if lo != lo else f"{format(d, fmt)} ± {format((hi - lo) / 2, fmt.lstrip('+'))}"


@app.command()
def interventions(
    results: Path = typer.Argument(..., help="Results folder of a spec with an intervention axis (e.g. experiments/interventions.toml)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
):
    """Per intervention: P(deceptive) and P(internal or corrigible) with 95% intervals, their change
    against the no-intervention baseline of the same sweep, and the training-performance cost."""
    from ..api import interventions as measure_interventions
    from ..measure import InterventionsError
    from ..sweep import StoreError, load

    try:
        runs = load(results)
        table = measure_interventions(results, runs=runs)
    except (StoreError, InterventionsError) as e:
        _fail(str(e))
    if _write_frame(table, fmt):
        return
    axis, baseline, groups = table.attrs["axis"], table.attrs["baseline"], table.attrs["groups"]
    for key, g in table.groupby(groups, sort=False) if groups else [((), table)]:
        key = key if isinstance(key, tuple) else (key,)
        where = ", ".join(f"{a}={v}" for a, v in zip(groups, key))
        _table(
            f"Interventions{f' ({where})' if where else ''}: % of runs (aligned = internal or corrigible) with 95% Wilson intervals; "
            f"changes against {baseline!r} in percentage points (Newcombe 95%); the cost: training accuracy and the policy's loss on "
            "its training data, changes with Welch 95% intervals",
            [axis, "runs", "P(deceptive) %", "change", "P(aligned) %", "change", "train acc %", "change", "train loss", "change"],
            [[Text(str(r[axis]), style="bold") if r["baseline"] else str(r[axis]), str(r["n"]),
              _ci(r["deceptive"], r["deceptive_low"], r["deceptive_high"]),
              "" if r["baseline"] else _pp(r["d_deceptive"], r["d_deceptive_low"], r["d_deceptive_high"]),
              _ci(r["aligned"], r["aligned_low"], r["aligned_high"]),
              "" if r["baseline"] else _pp(r["d_aligned"], r["d_aligned_low"], r["d_aligned_high"]),
              f"{100 * r['train_accuracy']:.1f}",
              "" if r["baseline"] else _pm(100 * r["d_train_accuracy"], 100 * r["d_train_accuracy_low"], 100 * r["d_train_accuracy_high"], "+.1f"),
              f"{r['fit_loss']:.4f}",
              "" if r["baseline"] else _pm(r["d_fit_loss"], r["d_fit_loss_low"], r["d_fit_loss_high"], "+.4f")]
             for r in g.to_dict("records")],
            left=1,
        )
    console.print(f"runs: {len(runs)} in {results}")
