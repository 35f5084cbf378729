"""The `deceptionlab` command line: run experiments, show their outcomes, list worlds.

Every user error (a bad spec, an unusable results folder) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .measure import VERDICTS, frequencies, path_summary
from .sweep import SpecError, Store, StoreError, load, load_spec, run_experiment
from .sweep.executor import Progress as ProgressHooks
from .worlds import REGISTRY

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Does SGD produce deceptively aligned models? Run the experiments.")
console = Console(width=None if sys.stdout.isatty() else 160)  # tables stay whole when piped
err_console = Console(stderr=True)


def _fail(msg: str) -> None:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class RunsPerSecond(ProgressColumn):
    """Runs per second since the start (chunks finish in bursts, so a recent-window rate jumps)."""

    def render(self, task) -> Text:
        speed = task.completed / task.elapsed if task.elapsed and task.completed else None
        return Text(f"{speed:,.1f} runs/s" if speed else "- runs/s", style="cyan")


@app.command()
def run(
    spec: Path = typer.Argument(..., help="Experiment spec (TOML)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results folder (default: results/<experiment name>)."),
    device: str = typer.Option("cpu", help="Torch device: cpu, or cuda where one exists."),
    chunk_size: Optional[int] = typer.Option(None, min=1, help="Runs per batched ensemble (default: sized to memory)."),
    workers: Optional[int] = typer.Option(None, min=1, help="Worker processes, each with a share of the torch threads (default: 1, in this process)."),
    show_table: bool = typer.Option(True, "--show/--no-show", help="Print the outcome table at the end."),
):
    """Train every run of SPEC not already stored in the results folder, then show the outcomes."""
    try:
        exp = load_spec(spec)
    except SpecError as e:
        _fail(str(e))
    out = out or Path("results") / exp.name
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), RunsPerSecond(),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err_console, transient=False,
    ) as bar:
        task = bar.add_task(exp.name, total=None)
        hooks = ProgressHooks(
            start=lambda n: bar.update(task, total=n),
            advance=lambda n: bar.advance(task, n),
            message=lambda m: bar.console.print(m),
        )
        try:
            counts = run_experiment(exp, out, spec_text=spec.read_text(), device=device, chunk_size=chunk_size, workers=workers, progress=hooks)
        except (SpecError, StoreError, OSError) as e:  # OSError: an unwritable folder, a full disk
            bar.live.transient = True  # the error is the one line left on the screen
            bar.stop()
            _fail(f"{out}: {e.strerror or e}" if isinstance(e, OSError) else str(e))
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(f"interrupted: finished chunks are stored in {out}; re-run the same command to resume")
            raise typer.Exit(130) from None
    err_console.print(f"{counts['trained']} runs trained, {counts['skipped']} already stored, in {counts['seconds']:.1f} s -> {out}")
    if show_table:
        show(out, fmt=Format.table)


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def show(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
):
    """Verdict frequencies per condition with 95% Wilson intervals."""
    try:
        runs = load(results)
    except StoreError as e:
        _fail(str(e))
    axes = [a for a in Store(results).axes() if a in runs.columns] or ["condition"]
    freq = frequencies(runs, by=axes)
    if fmt is Format.csv:
        sys.stdout.write(freq.to_csv(index=False))
        return
    if fmt is Format.json:
        sys.stdout.write(freq.to_json(orient="records", indent=1) + "\n")
        return
    table = Table(title=f"P_SGD(verdict) in % with 95% Wilson intervals: {results}", title_justify="left")
    for a in axes:
        table.add_column(a, overflow="fold")
    table.add_column("runs", justify="right")
    for v in VERDICTS:
        table.add_column(v, justify="right")
    for key, g in freq.groupby(axes, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        cells = []
        for r in g.itertuples():
            txt = f"{100 * r.p:.0f} ({100 * r.low:.0f}-{100 * r.high:.0f})"
            cells.append(f"[bold]{txt}[/]" if r.p >= 0.5 else (txt if r.count else f"[dim]{txt}[/]"))
        table.add_row(*map(str, key), str(int(g.n.iloc[0])), *cells)
    console.print(table)


@app.command()
def paths(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
    threshold: float = typer.Option(0.9, min=0.5, max=1.0, help="Template score at which the objective counts as generalised."),
):
    """Path events per condition: does situational awareness come before the objective (claim C1)?"""
    try:
        runs = load(results)
    except StoreError as e:
        _fail(str(e))
    axes = [a for a in Store(results).axes() if a in runs.columns] or ["condition"]
    summary = path_summary(runs, by=axes, threshold=threshold)
    if fmt is not Format.table:
        sys.stdout.write(summary.to_csv(index=False) if fmt is Format.csv else summary.to_json(orient="records", indent=1) + "\n")
        return
    table = Table(title=f"Path events per condition (steps are checkpoint steps; medians over runs): {results}", title_justify="left")
    cols = ["runs", "situation first % (95% CI)", "situation known at", "objective generalises at", "never %", "verdict settled at", "derailments"]
    for c in [*axes, *cols]:
        table.add_column(c, justify="left" if c in axes else "right", overflow="fold")
    fmt_step = lambda v: "-" if v != v else f"{v:.0f}"  # noqa: E731
    for r in summary.to_dict(orient="records"):
        table.add_row(
            *(str(r[a]) for a in axes), str(r["n"]), f"{100 * r['p_situation_first']:.0f} ({100 * r['low']:.0f}-{100 * r['high']:.0f})",
            fmt_step(r["median_sa_step"]), fmt_step(r["median_objective_step"]), f"{100 * r['p_objective_never']:.0f}",
            fmt_step(r["median_verdict_step"]), f"{r['mean_derailments']:.2f}",
        )
    console.print(table)


@app.command()
def worlds():
    """List the worlds and their knobs."""
    for name, cls in REGISTRY.items():
        table = Table(title=f"{name}: {cls.doc}", title_justify="left")
        table.add_column("knob")
        table.add_column("default")
        table.add_column("meaning")
        for row in cls().describe_knobs():
            table.add_row(*row)
        console.print(table)
        console.print(f"  heads: {', '.join(cls.all_heads)}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
