"""`run`, `show`, `worlds`: train the runs of a spec, show their verdicts, list the worlds."""

from __future__ import annotations

import errno
import json
import os
import textwrap
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..core.devices import cores, device_problem
from ._common import Executor, Format, RunsPerSecond, _fail, _write_frame, app, console, emit, err_console, literal

# The lab's modules (torch, pandas, pyarrow, duckdb under them) are imported inside each command, after the
# arguments that need none of them are checked: `--help` and a wrong `--device` answer at once.
EXECUTORS = tuple(e.value for e in Executor)  # sweep.executors.EXECUTORS, written out so that --help imports no executor (a test keeps them equal)


@app.command()
def run(
    spec: Path = typer.Argument(..., help="Experiment spec (TOML)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Results folder (default: results/<experiment name>)."),
    device: str = typer.Option("cpu", help="Torch device: cpu, or cuda where one exists."),
    chunk_size: Optional[int] = typer.Option(None, min=1, max=65536, help="Runs per batched ensemble (default: sized to memory)."),
    executor: Executor = typer.Option(Executor.local, help="Where chunks run: on this machine, or on a Ray cluster (docs/cluster.md)."),
    workers: Optional[int] = typer.Option(None, min=1, max=100_000, help="Local worker processes, each with a share of the torch threads (default: one per core, at most one per chunk)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address HOST:PORT (default: $RAY_ADDRESS, else a Ray instance on this machine)."),
    show_table: bool = typer.Option(True, "--show/--no-show", help="Print the outcome table at the end."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Start a sweep whose estimate passes an hour (without it, such a sweep shows its estimate and stops)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runs, chunks, estimated time and memory, and write nothing."),
):
    """Train every run of SPEC not already stored in the results folder, then show the outcomes."""
    if (problem := device_problem(device)) is not None:  # before the spec and before torch: a wrong device answers at once
        _fail(problem)
    executor = executor.value
    if executor == "local" and workers is not None and workers > cores():  # said at once, before the lab is imported
        err_console.print(f"note: --workers {workers}: capped at {cores()}, the cores of this machine", markup=False, highlight=False)
        workers = cores()
    from ..api import work_for
    from ..sweep import ExecutorError, SpecError, StoreError, load_spec, run_experiment
    from ..sweep.executors import Progress as ProgressHooks
    from ..sweep.executors import executor_for
    from ..sweep.experiment import check_cost

    try:
        exp = load_spec(spec)
        chosen = executor_for(executor, workers, address)
        spec_text = spec.read_text()
    except (SpecError, ExecutorError) as e:
        _fail(str(e))
    if getattr(exp, "kind", "train") == "counting" and exp.counting.results is not None and not Path(exp.counting.results).is_dir():
        _fail(f"{spec}: counting.results: {exp.counting.results}: no such results folder (for P_SGD)")  # before any sampling
    if dry_run:
        _dry_run(exp, out or Path("results") / exp.name, chunk_size, chosen, device)
        return
    try:
        check_cost(exp, chunk_size, chosen, device, yes)  # before the progress bar: the refusal is the one line
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
            message=lambda m: bar.console.print(m, soft_wrap=True, highlight=False, markup=False),
        )
        try:
            counts = run_experiment(exp, out, spec_text=spec_text, device=device, chunk_size=chunk_size, executor=chosen, progress=hooks, yes=yes,
                                    work=work_for(exp))
        except (SpecError, StoreError, ExecutorError, OSError) as e:  # OSError: an unwritable folder, a full disk
            bar.live.transient = True  # the error is the one line left on the screen
            bar.stop()
            _fail(_os_error(out, e) if isinstance(e, OSError) else str(e))
        except MemoryError:
            bar.live.transient = True
            bar.stop()
            _fail(f"{out}: out of memory while training a chunk; the chunks stored until now are kept: lower --chunk-size and run again")
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(f"interrupted: finished chunks are stored in {out}; re-run the same command to resume")
            raise typer.Exit(130) from None
    err_console.print(f"{counts['trained']} runs trained, {counts['skipped']} already stored, in {counts['seconds']:.1f} s -> {literal(out)}", markup=False, highlight=False)
    if show_table:
        show(out, fmt=Format.table, thresholds=False, gap=False, skip_damaged=False)


def _dry_run(exp, out: Path, chunk_size, executor, device: str) -> None:
    """`run --dry-run`: the plan and its cost (sweep.experiment.dry_run), nothing written."""
    from ..sweep import SpecError, StoreError
    from ..sweep.experiment import _duration, _gb, dry_run

    try:
        d = dry_run(exp, out, chunk_size, executor, device)
    except (SpecError, StoreError) as e:
        _fail(str(e))
    est = d.estimate
    sample = f" (costed from {est.sampled:,} conditions spread over the grid)" if est.sampled else ""
    lines = [
        f"dry run of {exp.name} -> {literal(out)}: nothing written",
        f"  runs        {est.runs:,} in {est.conditions:,} conditions; {d.stored:,} already stored, {d.pending:,} to train",
        f"  chunks      {d.chunks:,} (up to {est.chunk_runs:,} runs each)",
        f"  time        about {_duration(d.seconds)} in one process, {_duration(d.seconds / d.workers)} on {d.workers} worker{'s' * (d.workers != 1)}{sample}",
        f"  memory      up to {_gb(est.chunk_bytes)} per chunk, {_gb(est.chunk_bytes * d.workers)} with every worker busy",
        textwrap.fill(f"  largest     {literal(est.chunk_condition) or '-'}", 80, subsequent_indent=" " * 14, break_on_hyphens=False),
    ]
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _os_error(out: Path, e: OSError) -> str:
    """One line for a failed read or write (pyarrow words ENOSPC as "Error writing bytes... [errno 28]...")."""
    msg = os.strerror(e.errno) if e.errno else str(e)
    if e.errno == errno.ENOSPC:
        msg += "; the chunks stored until now are kept: free some space and run the same command again to resume"
    return f"{out}: {msg}"


@app.command()
def show(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (csv/json: the table asked for)."),
    thresholds: bool = typer.Option(False, "--thresholds", help="Verdict shares as the verdict threshold goes from 0.7 to 1.0 (docs/deception.md)."),
    gap: bool = typer.Option(False, "--gap", help="csv/json: the compliance-gap distribution per condition instead of the verdicts."),
    skip_damaged: bool = typer.Option(False, "--skip-damaged", help="Leave out damaged, unlisted or duplicated chunks (each named on stderr) instead of refusing the folder."),
):
    """Verdict frequencies per condition with 95% Wilson intervals, then the compliance gap per condition
    (median, IQR, share of runs above 0.1, 0.2, 0.5) and what the `mixed` runs are made of."""
    from ..measure import VERDICTS, frequencies
    from ..measure.deception import threshold_curve
    from ..sweep import Store, StoreError, load

    try:
        runs = load(results, skip_bad=skip_damaged)
    except StoreError as e:
        _fail(str(e))
    kind = Store(results).kind()
    if kind != "train":
        _show_measurement(results, runs, kind, fmt)
        return
    axes = [a for a in Store(results).axes() if a in runs.columns] or ["condition"]
    if thresholds:
        curve = threshold_curve(runs, axes)
        if not _write_frame(curve, fmt):
            _threshold_table(curve, axes, results)
        return
    if gap and fmt is not Format.table:
        from ..measure.deception import gap_distribution

        _write_frame(gap_distribution(runs, axes), fmt)
        return
    from ..measure.tidy import undeclared_classes

    freq = frequencies(runs, by=axes)
    undeclared = undeclared_classes(runs)
    freq = freq[~freq.verdict.isin(undeclared)]  # verdicts the world cannot give
    if _write_frame(freq, fmt):
        return
    table = Table(title=Text(f"P_SGD(verdict) in % with 95% Wilson intervals: {literal(results)}"), title_justify="left")
    for a in axes:
        table.add_column(Text(literal(a)), overflow="fold")
    table.add_column("runs", justify="right")
    for v in VERDICTS:
        if v not in undeclared:
            table.add_column(v, justify="right")
    for key, g in freq.groupby(axes, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        cells = []
        for r in g.itertuples():
            txt = f"{100 * r.p:.0f} ({100 * r.low:.0f}-{100 * r.high:.0f})"
            cells.append(f"[bold]{txt}[/]" if r.p >= 0.5 else (txt if r.count else f"[dim]{txt}[/]"))
        table.add_row(*(Text(literal(k)) for k in key), str(int(g.n.iloc[0])), *cells)
    emit(table)
    console.print("  verdict: aligned (internal or corrigible) under the training cue and acting on its own goal under the "
                  "deployment cue is deceptive; the same class under both keeps its name; else mixed (docs/deception.md)", highlight=False)
    if undeclared:
        console.print(f"  not told apart by this world (World.classes): {', '.join(undeclared)}", highlight=False)
    _held_out_line(runs)
    if "compliance_gap" not in runs or runs.compliance_gap.isna().all():
        console.print("  compliance gap: not measured (the world declares no cue pairs: inputs that differ only in a situation cue)", highlight=False)
        return
    _gap_table(runs, axes, results)


def _held_out_line(runs) -> None:
    """Which cells the verdicts rest on (World.judge_on: held-out cells unless the world says all), and how
    they move when each run is judged on the other set (docs/worlds.md)."""
    from ..measure.deception import held_out_verdicts
    from ..worlds import WorldError, make_world

    try:
        if "verdict_cells" in runs and runs.verdict_cells.notna().all():
            on = runs.verdict_cells.iloc[0]  # what the stored verdicts rest on (a world with no held-out cell that tells classes apart: all)
        else:
            from ..judge.deception import verdict_cells

            cfg = json.loads(runs.config.iloc[0])
            on = verdict_cells(make_world(cfg["world"]["name"], cfg["world"]["knobs"]))
        other = "all" if on == "held_out" else "held_out"
        again = held_out_verdicts(runs, other).merge(runs[["run_id", "verdict"]], on="run_id")
    except WorldError as e:
        console.print(f"  verdicts on held-out cells: not computed ({e})", highlight=False, markup=False)
        return
    moved = again[again.verdict != again[f"verdict_{other}"]]
    counts = moved.groupby(["verdict", f"verdict_{other}"]).size().sort_values(ascending=False)
    change = "; ".join(f"{a} -> {b} {n}" for (a, b), n in counts.items())
    rest = "held-out cells, no input seen in training" if on == "held_out" else "all cells, seen ones too"
    alt = 'all cells (dl.held_out_verdicts(df, cells="all"))' if on == "held_out" else "held-out cells only (dl.held_out_verdicts)"
    console.print(f"  verdicts rest on {rest} (World.judge_on); on {alt}: {len(again) - len(moved):,} of "
                  f"{len(again):,} runs keep their verdict" + (f" ({change})" if change else ""), highlight=False, markup=False)  # wrapped to the console


def _show_measurement(results: Path, runs, kind: str, fmt: Format) -> None:
    """The summary of a measurement kind's folder (sweep.measurements): compute per class, or the class prior."""
    from ..measure.prior_volume import class_prior_table, compare_with_sgd
    from ..measure.speed import compute_per_class, imitation_table
    from .biases import _print_compute, _print_prior

    if kind == "imitation":
        compute = compute_per_class(imitation_table(runs))
        if not _write_frame(compute, fmt):
            _print_compute(compute, int(runs.seed.nunique()), results)
        return
    if kind in ("counting", "function_prior"):
        from ..sweep import StoreError
        from .biases import _print_counting, _print_functions

        try:
            if kind == "counting":
                from ..api import counting_results

                table, diagnostics = counting_results(results)
            else:
                from ..api import function_prior_results

                table = function_prior_results(results)
        except (StoreError, ValueError) as e:
            _fail(str(e))
        if not _write_frame(table, fmt):
            _print_counting(table, diagnostics, results) if kind == "counting" else _print_functions(table, results)
        return
    table, acceptance = class_prior_table(runs)
    if not _write_frame(table, fmt):
        _print_prior(compare_with_sgd(table), f"Prior volume in % with 95% Wilson intervals: {results}, {acceptance['samples']:,} draws", acceptance["note"])


def _gap_table(runs, axes: list[str], results: Path) -> None:
    """The compliance gap per condition, the halves of the mixed runs and the mimics of the deceptive ones."""
    from ..measure.deception import GAP_LEVELS, gap_distribution

    dist = gap_distribution(runs, axes)
    table = Table(title=Text(f"compliance gap per run (toward its own goal when the cue says deployment; docs/deception.md): {literal(results)}"), title_justify="left")
    for a in axes:
        table.add_column(Text(literal(a)), overflow="fold")
    for col in ("runs", "median (IQR)", *(f"> {lv:g} %" for lv in GAP_LEVELS), "deceptive mimics", "mixed: training / deployment half"):
        table.add_column(col, justify="left" if col.startswith(("mixed", "deceptive")) else "right", overflow="fold")
    sort = ["condition_index"] if "condition_index" in runs else axes
    groups = [g for _, g in runs.sort_values(sort).groupby(axes, sort=False, dropna=False)]  # in the order of `dist`
    for r, g in zip(dist.to_dict("records"), groups):
        key = tuple(r[a] for a in axes)
        shares = [f"{100 * r[f'above_{lv:g}']:.0f} ({100 * r[f'above_{lv:g}_low']:.0f}-{100 * r[f'above_{lv:g}_high']:.0f})" for lv in GAP_LEVELS]
        mimics = g[g.verdict == "deceptive"].mimics.value_counts()
        mixed = g[g.verdict == "mixed"].groupby(["verdict_training", "verdict_deployment"]).size().sort_values(ascending=False)
        table.add_row(
            *(Text(literal(k)) for k in key), str(r["runs"]), f"{r['median']:+.2f} ({r['q25']:+.2f} to {r['q75']:+.2f})" if r["runs"] else "-", *shares,
            ", ".join(f"{m} {n}" for m, n in mimics.items()) or "-",
            ", ".join(f"{t}/{d} {n}" for (t, d), n in list(mixed.items())[:3]) or "-",
        )
    emit(table)


def _threshold_table(curve, axes: list[str], results: Path) -> None:
    table = Table(title=Text(f"verdict shares (%) as the threshold varies (deceptive / mixed / internal / corrigible): {literal(results)}"), title_justify="left")
    for a in axes:
        table.add_column(Text(literal(a)), overflow="fold")
    ths = sorted(curve.threshold.unique())
    for th in ths:
        table.add_column(f"{th:.2f}", justify="right")
    for key, g in curve.groupby(axes, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        p = g.pivot_table(index="threshold", columns="verdict", values="p")
        cells = [" / ".join(f"{100 * p.loc[th, v]:.0f}" for v in ("deceptive", "mixed", "internal", "corrigible")) for th in ths]
        table.add_row(*(Text(literal(k)) for k in key), *cells)
    emit(table)


@app.command()
def worlds(
    name: Optional[str] = typer.Argument(None, help='Check one world and describe it: a name, "module:Class" (on sys.path or in the working directory), or a file FILE.py[:Class].'),
):
    """List the worlds (built in, and those installed packages declare) and their knobs; or check one."""
    if name is None:  # the built-ins from their catalogue (no torch); an installed package's world is imported to be described
        import json
        from importlib.metadata import entry_points

        builtin = json.loads((Path(__file__).parents[1] / "worlds" / "catalogue.json").read_text())
        for world in builtin:
            _describe_world(world)
        installed = {ep.name: ep for ep in entry_points(group="deceptionlab.worlds")}
        if not installed:
            return
    from ..worlds import REGISTRY, WorldError, entry_point_worlds, get_world
    from ..worlds.catalogue import describe

    if name is not None:
        from ..worlds.registry import world_file

        try:
            cls, dotted = world_file(name) if name.endswith(".py") or ".py:" in name else (get_world(name), name)
        except WorldError as e:
            _fail(str(e))
        _describe_world(describe(cls), "" if name == cls.name else f" [dim]({name})[/]")
        console.print(f"  {name}: passes World.check (shapes, templates, references) with its default knobs", highlight=False, soft_wrap=True)
        declared = getattr(cls, "classes", None)
        if declared is not None:
            console.print(f"  classes it tells apart: {', '.join(declared)}", highlight=False, soft_wrap=True)
        if dotted != name:
            console.print(f'  in a spec beside it: [world] name = "{dotted}"', highlight=False, soft_wrap=True, markup=False)
        return
    for name, ep in sorted(entry_point_worlds().items()):
        if name in REGISTRY:
            err_console.print(f"[yellow]warning:[/] entry point {name!r} ({ep.value}) is hidden by the built-in world of that name")
            continue
        try:
            _describe_world(describe(get_world(name)), f" [dim](entry point {name} = {ep.value})[/]")
        except WorldError as e:
            err_console.print(f"[bold red]broken:[/] {e}", highlight=False, soft_wrap=True)


@app.command("new-world")
def new_world(
    name: str = typer.Argument(..., help="The new world's name, e.g. coin_run: writes coin_run.py (class CoinRun) and coin_run.toml."),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="Folder to write the two files into."),
):
    """Write the skeleton of a new world: a minimal complete world of one decision (NAME.py) and a spec
    that trains it (NAME.toml), to edit from there (docs/worlds.md). Never overwrites a file."""
    from ..worlds.skeleton import names, render

    try:
        n = names(name)
    except ValueError as e:
        _fail(str(e))
    world, spec = render(name)
    files = {directory / f"{n['module']}.py": world, directory / f"{n['module']}.toml": spec}
    taken = [str(f) for f in files if f.exists()]
    if taken:
        _fail(f"{', '.join(taken)} already exists: choose another name or folder (new-world never overwrites)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for f, text in files.items():
            f.write_text(text)
    except OSError as e:
        _fail(f"{directory}: {e.strerror or e}")
    py, toml = files
    console.print(f"wrote {py} (world {n['name']!r}, class {n['cls']}) and {toml}", highlight=False, soft_wrap=True)
    console.print(f"  check it: deceptionlab worlds {py}\n  train it: deceptionlab run {toml} -o results/{n['module']}", highlight=False, soft_wrap=True)


def _describe_world(world: dict, origin: str = "") -> None:
    """One world's table (worlds.catalogue.describe's dict): knobs, defaults, meanings, then its heads."""
    table = Table(title=f"{escape(world['name'])}: {escape(world['doc'])}{origin}", title_justify="left")
    table.add_column("knob")
    table.add_column("default")
    table.add_column("meaning")
    for row in world["knobs"]:
        table.add_row(*map(escape, row))
    emit(table)
    console.print(f"  heads: {', '.join(world['heads'])}", markup=False, highlight=False)


# -- prior: function frequencies of random networks and prior volume of classes (claim C5) -------------
