"""The `deceptionlab` command line: run experiments, show their outcomes, list worlds.

Every user error (a bad spec, an unusable results folder) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .measure import VERDICTS, frequencies, path_summary
from .sweep import SpecError, Store, StoreError, load, load_spec, run_experiment
from .sweep.executor import Progress as ProgressHooks
from .worlds import REGISTRY, get_world

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


# -- prior: function frequencies of random networks and prior volume of classes (claim C5) -------------
def _parse_prior_args(inputs: str, arch: Optional[str], samples: str, init: str):
    """Validate `deceptionlab prior`'s arguments; one clear error line for each mistake."""
    from .measure.prior import Init

    try:
        n_samples = float(samples)
    except ValueError:
        _fail(f"--samples {samples!r}: not a number")
    if not (n_samples >= 1 and n_samples == int(n_samples) and n_samples < 1e12):
        _fail(f"--samples {samples!r}: must be a whole number of draws, at least 1")
    widths = None
    if arch is not None:
        try:
            widths = [int(w) for w in arch.split(",")]
        except ValueError:
            _fail(f"--arch {arch!r}: hidden widths must be comma-separated positive integers, e.g. 40,40")
        if not widths or any(w < 1 for w in widths):
            _fail(f"--arch {arch!r}: hidden widths must be comma-separated positive integers, e.g. 40,40")
    try:
        init_obj = Init.parse(init)
    except ValueError as e:
        _fail(str(e))
    return int(n_samples), widths, init_obj


def _prior_world(name: str, knobs: list[str]):
    from pydantic import ValidationError

    try:
        cls = get_world(name)
        values = {}
        for kv in knobs:
            k, sep, v = kv.partition("=")
            if not sep:
                raise ValueError(f"--knob {kv!r}: expected name=value")
            values[k.strip()] = v.strip()
        return cls(values)
    except ValidationError as e:
        _fail(f"world {name!r}: bad knob: " + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
    except ValueError as e:
        _fail(str(e))


def _progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=err_console, transient=True)


@app.command()
def prior(
    inputs: str = typer.Option("boolean:7", help="Input set: boolean:n (all 2^n inputs in {0,1}^n) or probes:WORLD (a world's probe inputs)."),
    arch: Optional[str] = typer.Option(None, help="Hidden widths, e.g. 40,40 (default 40,40; with --world 64,64, equal widths)."),
    samples: str = typer.Option("1e6", help="Random parameter draws (1e7 is fine)."),
    init: str = typer.Option("torch", help="torch (nn.Linear default), uniform:a, kaiming or lecun; weights and biases alike."),
    seed: int = typer.Option(0, help="Seed of the draws: same seed, same counts."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for functions.parquet / class_prior.csv and the plots."),
    top: int = typer.Option(15, min=1, help="Functions shown in the table."),
    world: Optional[str] = typer.Option(None, help="Instead of functions: the prior volume of each class on this world (e.g. bitworld)."),
    knob: list[str] = typer.Option([], help="A world knob, name=value (repeat)."),
    fit_rows: Optional[int] = typer.Option(None, min=1, help="With --world: condition on this many random training inputs instead of all."),
    fit_threshold: float = typer.Option(0.95, min=0.5, max=1.0, help="Training accuracy that counts as fitting."),
    results: Optional[Path] = typer.Option(None, help="With --world: a results folder whose P_SGD(class) goes beside the prior."),
    sgd_runs: int = typer.Option(0, min=0, help="Boolean inputs: also train this many runs on a subset and compare P_SGD(f) with P_prior(f)."),
    train_size: int = typer.Option(16, min=1, help="Size of that training subset S."),
    target: Optional[str] = typer.Option(None, help="Target truth table (hex) for --sgd-runs (default: the first input bit x_0)."),
):
    """The prior of random networks: function frequencies vs LZ complexity, or P_prior(class) on a world."""
    from .measure import prior as P

    n, widths, init_obj = _parse_prior_args(inputs, arch, samples, init)
    if world is not None:
        _prior_classes(_prior_world(world, knob), n, widths or [64, 64], init_obj, seed, out, fit_rows, fit_threshold, results)
        return
    kind, _, arg = inputs.partition(":")
    if kind == "boolean":
        if not arg.isdigit() or not 1 <= int(arg) <= 16:
            _fail(f"--inputs {inputs!r}: boolean:n needs a whole number 1 <= n <= 16")
        x = P.boolean_inputs(int(arg))
    elif kind == "probes" and arg:
        w = _prior_world(arg, knob)
        x = torch.cat([c.x for c in w.probe_cells]).unique(dim=0)
    else:
        _fail(f"--inputs {inputs!r}: expected boolean:n or probes:WORLD")
    widths = widths or [40, 40]
    with _progress_bar() as bar:
        task = bar.add_task(f"{n:,} draws", total=n)
        t0 = time.perf_counter()
        functions = P.sample_functions(x, widths, n, init_obj, seed, progress=lambda d: bar.update(task, completed=d))
        secs = time.perf_counter() - t0
    corr = P.complexity_correlation(functions)
    name = f"{x.shape[1]}-{'-'.join(map(str, widths))}-1 on {inputs}, init {init}"
    table = Table(title=f"P_prior(f), {name}: {n:,} draws in {secs:.1f} s, {len(functions):,} distinct functions", title_justify="left")
    for c in ("rank", "truth table (hex)", "count", "frequency", "LZ complexity"):
        table.add_column(c, justify="left" if c.startswith("truth") else "right", overflow="fold")
    for r in functions.head(top).itertuples():
        shown = r.function if len(r.function) <= 40 else r.function[:39] + "…"  # full tables are in functions.parquet
        table.add_row(str(r.Index + 1), shown, f"{r.count:,}", f"{r.frequency:.3g}", "-" if r.complexity != r.complexity else f"{r.complexity:.1f}")
    console.print(table)
    console.print(f"log10 P(f) vs LZ complexity over {corr['n_functions']:,} functions: Spearman {corr['spearman']:.3f}, Pearson {corr['pearson']:.3f}")
    if sgd_runs and kind != "boolean":
        _fail("--sgd-runs compares on a Boolean input set (--inputs boolean:n)")
    if sgd_runs:
        _prior_vs_sgd(x, functions, widths, sgd_runs, train_size, target, seed, out)
    if out is not None:
        from .measure.prior_plots import complexity_plot, rank_plot

        try:
            out.mkdir(parents=True, exist_ok=True)
            functions.to_parquet(out / "functions.parquet", index=False)
            rank_plot(functions, out, name)
            complexity_plot(functions, out, name)
        except OSError as e:
            _fail(f"{out}: {e.strerror or e}")
        err_console.print(f"functions.parquet, rank.png/svg, complexity.png/svg -> {out}")


def _prior_vs_sgd(x, functions, widths, runs, train_size, target, seed, out) -> None:
    from .measure.prior import pack_bits, to_hex
    from .measure.prior_sgd import compare_functions, prior_given_subset, sgd_functions, training_subset

    m = len(x)
    if len(set(widths)) != 1:
        _fail(f"--sgd-runs trains the lab's MLPEnsemble, which needs equal hidden widths (got {widths})")
    if train_size > m:
        _fail(f"--train-size {train_size}: the input set has only {m} inputs")
    # the default target is the function x_0 (the first input bit); simple, so both priors give it weight
    target = target or to_hex(pack_bits(x[:, :1].T > 0).numpy(), m)[0]
    if not all(ch in "0123456789abcdefABCDEF" for ch in target) or len(target) != -(-m // 4):
        _fail(f"--target {target!r}: expected a hex truth table of {-(-m // 4)} digits for {m} inputs")
    subset = training_subset(m, train_size, seed)
    sgd, fit_rate = sgd_functions(x, target, subset, depth=len(widths), width=widths[0], runs=runs, seed=seed)
    prior_fit, accepted = prior_given_subset(functions, target, subset, m)
    both, stats = compare_functions(prior_fit, sgd)
    console.print(
        f"P_SGD(f|S) vs P_prior(f|S), target {target}, |S| = {train_size}: {fit_rate:.0%} of {runs} runs fit S; "
        f"{accepted:,} prior draws fit S; log-log Pearson {stats['log_pearson']:.3f} over {stats['functions_in_both']} functions "
        f"(the prior sampled functions carrying {stats['sgd_mass_covered']:.0%} of SGD's mass)"
    )
    if out is not None:
        from .measure.prior_plots import sgd_vs_prior_plot

        out.mkdir(parents=True, exist_ok=True)
        both.to_parquet(out / "sgd_vs_prior.parquet", index=False)
        sgd_vs_prior_plot(both, stats, out)


def _prior_classes(w, n, widths, init_obj, seed, out, fit_rows, fit_threshold, results) -> None:
    from .measure.prior_volume import class_prior, compare_with_sgd

    if len(set(widths)) != 1:
        _fail(f"--world draws the lab's MLPEnsemble, which needs equal hidden widths (got {widths})")
    if init_obj.name != "torch":
        _fail("--world draws the lab's model family, whose init is torch (nn.Linear default)")
    if results is not None and not results.is_dir():
        _fail(f"{results}: no such results folder")
    with _progress_bar() as bar:
        task = bar.add_task(f"{n:,} draws on {w.name}", total=n)
        try:
            table, acc = class_prior(w, n, depth=len(widths), width=widths[0], seed=seed, fit_rows=fit_rows,
                                     fit_threshold=fit_threshold, progress=lambda d: bar.update(task, completed=d))
        except ValueError as e:
            _fail(str(e))
    try:
        wide = compare_with_sgd(table, results)
    except StoreError as e:
        _fail(str(e))
    t = Table(title=f"Prior volume in % with 95% Wilson intervals: {w.name}, {len(widths)}x{widths[0]} MLPs, {n:,} draws", title_justify="left")
    for c in wide.columns:
        t.add_column(c, justify="left" if c == "verdict" else "right")
    for r in wide.itertuples(index=False):
        t.add_row(*map(str, r))
    console.print(t)
    console.print(acc["note"])
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
            table.to_csv(out / "class_prior.csv", index=False)
        except OSError as e:
            _fail(f"{out}: {e.strerror or e}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
