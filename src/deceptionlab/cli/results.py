"""`verify`, `migrate`: check every chunk of a results folder; convert a folder of results format 3."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import _fail, app, console, err_console


@app.command()
def verify(results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`.")):
    """Check every chunk of RESULTS against its manifest (checksums, listed, no run twice): one line per
    problem and how to repair it; exit code 1 when there is any problem, 0 when the folder is sound."""
    from ..sweep import Store

    if not results.is_dir():
        _fail(f"{results}: no such results folder")
    good, problems = Store(results).check(fresh=True)
    for p in problems:
        err_console.print(f"problem: {p.message}\n  repair: {p.repair}", markup=False, highlight=False, soft_wrap=True)
    runs = sum(e.rows for _, e in good)
    if problems:
        err_console.print(f"{len(problems)} problem(s) in {results}; {len(good)} sound chunks ({runs} runs)", markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(f"{results}: {len(good)} chunks, {runs} runs, every one matching its checksum", markup=False, highlight=False)


@app.command()
def migrate(
    results: Path = typer.Argument(..., help="Results folder of results format 3."),
    keep_old: bool = typer.Option(False, "--keep-old", help="Keep the format-3 files in RESULTS/format3/ after the swap."),
):
    """Convert a results folder of format 3 to format 4 (new run ids: docs/results-format.md). The new folder is
    written beside the old, verified run by run, then swapped in; killed, the same command resumes."""
    from ..sweep import SpecError, StoreError
    from ..sweep.migrate import migrate as _migrate

    if not results.is_dir():
        _fail(f"{results}: no such results folder")
    try:
        counts = _migrate(results, report=lambda m: err_console.print(m, markup=False, highlight=False, soft_wrap=True), keep_old=keep_old)
    except (StoreError, SpecError) as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{results}: {e.strerror or e}; the format-3 files are untouched until the swap: run the same command again")
    if counts.get("already"):
        console.print(f"{results}: already results format 4; nothing to migrate", markup=False, highlight=False)
        return
    console.print(f"{results}: {counts['runs']} runs migrated to results format 4 (old run id -> new in format3-ids.json)", markup=False, highlight=False)
