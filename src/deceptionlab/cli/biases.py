"""`prior` and `speed`: the inductive biases, prior volume (simplicity) and compute (speed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ._common import Executor, Format, Penalty, _check_out, _fail, _progress_bar, _write_frame, app, console, emit, err_console


def _numbers(text: str, kind, what: str) -> tuple:
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        _fail(f"{what}: expected comma-separated {kind.__name__}s, got {text!r}")
    if not values:
        _fail(f"{what}: no values given")
    return values


def _world_from_knobs(name: str, knobs: list[str], name_field: str = "--world"):
    """A world from --world (or `name_field`) and repeated --knob KNOB=VALUE (JSON values, or bare words); one-line errors."""
    import json

    from ..worlds import WorldError, make_world

    given = {}
    for kv in knobs:
        key, sep, raw = kv.partition("=")
        if not sep or not key:
            _fail(f"--knob {kv!r}: expected KNOB=VALUE")
        try:
            given[key] = json.loads(raw)
        except json.JSONDecodeError:
            given[key] = raw  # a bare word: a string knob such as situational_awareness=off
    try:
        return make_world(name, given, name_field=name_field, knob_field="--knob ")
    except WorldError as e:
        _fail(str(e))


def _print_compute(compute, n_seeds: int, folder) -> None:
    import math

    from ..measure import wilson

    t = Table(title=f"Compute each class needs to be imitated (cheapest architecture reaching its verdict): {folder}", title_justify="left")
    for c in ("class", "depth", "width", "forward FLOPs", "seeds reaching it % (95% CI)"):
        t.add_column(c, justify="left" if c == "class" else "right")
    for cls, depth, width, flops, share in compute.itertuples(index=False):
        if math.isnan(depth):  # never reached on the grid
            t.add_row(cls, "-", "-", "not reached", "0")
            continue
        lo, hi = wilson(round(share * n_seeds), n_seeds)
        t.add_row(cls, f"{depth:.0f}", f"{width:.0f}", f"{flops:,.0f}", f"{100 * share:.0f} ({100 * lo:.0f}-{100 * hi:.0f})")
    emit(t)


def _print_prior(wide, title: str, note: str) -> None:
    t = Table(title=title, title_justify="left")
    for c in wide.columns:
        t.add_column(c, justify="left" if c == "verdict" else "right")
    for r in wide.itertuples(index=False):
        t.add_row(*map(str, r))
    emit(t)
    console.print(note)


def _print_speed(res, folder: Path) -> None:
    from ..measure import VERDICTS, frequencies, ponder_summary

    _print_compute(res.compute, res.meta["imitation"]["seeds"], folder)

    if res.meta["ponder"] is None:
        console.print(f"no early-exit sweep: the ponder penalty needs +-1 decisions, and {res.meta['world']}'s models act otherwise")
        return
    freq = frequencies(res.ponder_runs, by=["width", "beta"])
    summary = ponder_summary(res.ponder_runs).set_index(["width", "beta"])
    p = res.meta["ponder"]
    t = Table(
        title=f"Early-exit models under a compute penalty beta ({p['penalty']}, {p['depth']} layers): verdict % (95% Wilson) and performance",
        title_justify="left",
    )
    for c in ("width", "beta", "runs", *VERDICTS, "train acc", "deploy base", "exit layer"):
        t.add_column(c, justify="left" if c in ("width", "beta") else "right")  # left: the keys a narrow terminal repeats
    for (width, beta), g in freq.groupby(["width", "beta"], sort=True):  # width by width, beta ascending
        s = summary.loc[(width, beta)]
        cells = [f"{100 * r.p:.0f} ({100 * r.low:.0f}-{100 * r.high:.0f})" for r in g.itertuples()]
        t.add_row(str(width), f"{beta:g}", str(int(s.n)), *cells, f"{s.train_accuracy:.3f}", f"{s.deploy_base:.3f}", f"{s.expected_exit:.2f}")
    emit(t)


def _run_hooks(bar, task):
    from ..sweep.executors import Progress as ProgressHooks

    return ProgressHooks(start=lambda n: bar.update(task, total=n), advance=lambda n: bar.advance(task, n),
                         message=lambda m: bar.console.print(m, soft_wrap=True, highlight=False, markup=False))


def _run_specs(label: str, run, executor: str, workers: Optional[int], address: Optional[str]) -> dict:
    """`run(executor, progress)` under a progress bar; its SpecError, StoreError, ExecutorError or OSError as one line."""
    from ..sweep import ExecutorError, SpecError, StoreError
    from ..sweep.executors import executor_for

    try:
        chosen = executor_for(executor, workers, address)
    except ExecutorError as e:
        _fail(str(e))
    with _progress_bar() as bar:
        task = bar.add_task(label, total=None)
        try:
            return run(chosen, _run_hooks(bar, task))
        except (SpecError, StoreError, ExecutorError, ValueError) as e:
            bar.stop()
            _fail(str(e))
        except OSError as e:
            bar.stop()
            _fail(f"{e.filename or label}: {e.strerror or e}")
        except KeyboardInterrupt:
            bar.stop()
            err_console.print("interrupted: finished chunks are stored; re-run the same command to resume")
            raise typer.Exit(130) from None


@app.command()
def speed(
    folder: Optional[Path] = typer.Argument(None, help="The output folder, as -o/--out gives it (kept for older command lines)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder: the results folders OUT/imitation and OUT/ponder (resumable: runs stored there are not trained again)."),
    world: str = typer.Option("bitworld", help="World to measure (`deceptionlab worlds` lists them)."),
    knob: list[str] = typer.Option([], "--knob", "-k", help="World knob KNOB=VALUE (repeatable)."),
    betas: str = typer.Option("0,0.01,0.1,1", help="Compute-penalty weights, comma-separated, >= 0."),
    seeds: int = typer.Option(32, min=1, help="Seeds per (beta, width) of the early-exit sweep."),
    widths: str = typer.Option("8,32", help="Early-exit model widths."),
    depth: int = typer.Option(3, min=1, max=16, help="Early-exit trunk layers (= exits)."),
    steps: int = typer.Option(1000, min=1, help="Early-exit training-objective steps."),
    own_goal_steps: int = typer.Option(300, min=0, help="Early-exit proxy pretraining steps before them (0: none)."),
    penalty: Penalty = typer.Option(Penalty.layers, help="layers (beta * E[exit layer]) or kl (PonderNet: beta * KL to a geometric prior)."),
    imitation_depths: str = typer.Option("1,2,3", help="Imitation grid: depths."),
    imitation_widths: str = typer.Option("1,2,3,4,8,16", help="Imitation grid: widths."),
    imitation_seeds: int = typer.Option(4, min=1, help="Imitation grid: seeds per (class, architecture)."),
    imitation_steps: int = typer.Option(400, min=1, help="Imitation grid: full-batch Adam steps."),
    spec: list[Path] = typer.Option([], "--spec", help="Run this spec instead of the one the options build: kind = \"imitation\" (OUT/imitation), or a training spec sweeping model.compute_penalty as 'beta' and model.width as 'width' (OUT/ponder). Repeatable."),
    executor: Executor = typer.Option(Executor.local, help="Where chunks run: on this machine, or on a Ray cluster (docs/cluster.md)."),
    workers: Optional[int] = typer.Option(None, min=1, help="Local worker processes (default: one per core, at most one per chunk)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster address HOST:PORT."),
    threads: int = typer.Option(1, min=1, help="Torch threads in this process (the matmuls are tiny: one thread is fastest on a shared machine)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (csv/json: both tables in one long frame, a column 'table' naming each row's; progress on stderr)."),
):
    """Speed prior (C6, C7): compute each class needs, and what a compute penalty does to verdicts and performance.

    Both are specs run into OUT like any sweep (experiments/speed_imitation.toml, experiments/speed_ponder.toml
    are the defaults as files); a second call trains nothing new and shows the same tables."""
    if (folder is None) == (out is None):
        _fail("speed: give the output folder once, as -o/--out OUT (or as the argument OUT)")
    out = out or folder
    _check_out(out)
    penalty, executor = penalty.value, executor.value
    import torch

    from ..api import run_speed, speed_part, speed_results
    from ..measure import ImitationConfig, PonderConfig, imitation_spec, ponder_spec
    from ..measure.speed import PONDER_FAMILIES
    from ..models.ponder import PENALTIES
    from ..report.speed_figures import plot_speed
    from ..sweep import SpecError, StoreError, load_spec

    beta_values = _numbers(betas, float, "--betas")
    if any(not b >= 0 or b == float("inf") for b in beta_values):
        _fail(f"--betas: must be finite non-negative numbers, got {betas!r}")
    if penalty not in PENALTIES:
        _fail(f"--penalty: unknown penalty {penalty!r} (known: {', '.join(PENALTIES)})")
    width_values = _numbers(widths, int, "--widths")
    im_depths, im_widths = _numbers(imitation_depths, int, "--imitation-depths"), _numbers(imitation_widths, int, "--imitation-widths")
    if min((*width_values, *im_depths, *im_widths)) < 1:
        _fail("--widths, --imitation-depths, --imitation-widths: every value must be at least 1")
    specs: dict[str, object] = {}
    for path in spec:
        try:
            given = load_spec(path)
        except SpecError as e:
            _fail(str(e))
        part = speed_part(given)
        if part is None:
            _fail(f"--spec {path}: neither an imitation spec (kind = \"imitation\") nor a ponder sweep (model.compute_penalty swept as 'beta', model.width as 'width')")
        if part in specs:
            _fail(f"--spec {path}: a second {part} spec")
        specs[part] = given
    if len(specs) < 2:
        w = _world_from_knobs(world, knob)
        if "imitation" not in specs:
            specs["imitation"] = imitation_spec(w, ImitationConfig(depths=im_depths, widths=im_widths, seeds=imitation_seeds, steps=imitation_steps))
        if "ponder" not in specs and not spec:
            if w.family in PONDER_FAMILIES:
                specs["ponder"] = ponder_spec(w, PonderConfig(betas=beta_values, widths=width_values, depth=depth, seeds=seeds, steps=steps,
                                                             own_goal_steps=own_goal_steps, penalty=penalty))
            else:
                err_console.print(f"ponder: skipped: early-exit models learn +-1 decisions; {w.name}'s models ({w.family} family) choose among several outputs")
    torch.set_num_threads(threads)
    counts = _run_specs("speed", lambda ex, hooks: run_speed(out, specs.get("imitation"), specs.get("ponder"), executor=ex, progress=hooks),
                        executor, workers, address)
    trained = sum(c["trained"] for c in counts.values())
    err_console.print(f"{trained} runs trained, {sum(c['skipped'] for c in counts.values())} already stored -> {out}")
    try:
        res = speed_results(out)
        files = plot_speed(res.ponder_runs, res.ponder_cells, out) if not res.ponder_runs.empty else []
    except StoreError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    if fmt is Format.table:
        _print_speed(res, out)
    else:
        _write_frame(_speed_frame(res), fmt)
    err_console.print(f"{len(files)} figures in {out}")


def _speed_frame(res):
    """Both speed tables in one long frame: the compute each class needs ('compute') and the early-exit
    sweep's verdict shares with Wilson intervals per (width, beta) with its performance ('ponder')."""
    import pandas as pd

    from ..measure import frequencies, ponder_summary

    parts = [res.compute.assign(table="compute")]
    if res.meta["ponder"] is not None:
        freq = frequencies(res.ponder_runs, by=["width", "beta"])
        summary = ponder_summary(res.ponder_runs).drop(columns="n")  # n: the runs, as freq's n
        parts.append(freq.merge(summary, on=["width", "beta"], how="left").assign(table="ponder"))
    frame = pd.concat(parts, ignore_index=True)
    return frame[["table", *[c for c in frame.columns if c != "table"]]]


# -- theory (issue 5): the argument of the texts as a quantitative model ------------------------------


def _parse_prior_args(inputs: str, arch: Optional[str], samples: str, init: str):
    """Validate `deceptionlab prior`'s arguments; one clear error line for each mistake."""
    from ..measure.prior import Init

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


@app.command()
def prior(
    inputs: str = typer.Option("boolean:7", help="Input set: boolean:n (all 2^n inputs in {0,1}^n) or probes:WORLD (a world's probe inputs)."),
    arch: Optional[str] = typer.Option(None, help="Hidden widths, e.g. 40,40 (default 40,40; with --world 64,64, equal widths)."),
    samples: str = typer.Option("1e6", help="Random parameter draws (1e7 is fine)."),
    init: str = typer.Option("torch", help="torch (nn.Linear default), uniform:a, uniform:a1/a2/... (per layer), he-uniform, valle-perez, kaiming or lecun; ',bias=F' scales the biases by F (docs/counting.md)."),
    signed: bool = typer.Option(False, "--signed", help="boolean:n inputs as +-1 instead of 0/1."),
    min_count: int = typer.Option(1, min=1, help="Also correlate log P with LZ complexity over the functions seen at least this many times (Valle-Perez et al.'s statistic)."),
    seed: int = typer.Option(0, help="Seed of the draws: same seed, same counts."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for functions.parquet / class_prior.csv and the plots."),
    top: int = typer.Option(15, min=1, help="Functions shown in the table."),
    world: Optional[str] = typer.Option(None, help="Instead of functions: the prior volume of each class on this world (e.g. bitworld)."),
    knob: list[str] = typer.Option([], "--knob", "-k", help="With --world: a world knob KNOB=VALUE (repeatable)."),
    fit_rows: Optional[int] = typer.Option(None, min=1, help="With --world: condition on this many random training inputs instead of all."),
    fit_threshold: float = typer.Option(0.95, min=0.5, max=1.0, help="Training accuracy that counts as fitting."),
    results: Optional[Path] = typer.Option(None, help="With --world: a results folder whose P_SGD(class) goes beside the prior."),
    sgd_runs: int = typer.Option(0, min=0, help="Boolean inputs: also train this many runs on a subset and compare P_SGD(f) with P_prior(f)."),
    train_size: int = typer.Option(16, min=1, help="Size of that training subset S."),
    target: Optional[str] = typer.Option(None, help="Target truth table (hex) for --sgd-runs (default: the first input bit x_0)."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="A spec of kind \"prior\" or \"function_prior\" (docs/measurements.md) to run instead of the options."),
    workers: Optional[int] = typer.Option(None, min=1, help="With --world or --spec: local worker processes (default: one per core, at most one per chunk)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (csv/json: every function drawn, or the class prior's long table; progress on stderr)."),
):
    """The prior of random networks: function frequencies vs LZ complexity, or P_prior(class) on a world."""

    from ..measure import prior as P

    n, widths, init_obj = _parse_prior_args(inputs, arch, samples, init)
    given = None
    if spec is not None:
        given = _load_kind_spec(spec, ("prior", "function_prior"))
        if given.kind == "prior":
            _prior_classes(None, n, widths, init_obj, seed, out, fit_rows, fit_threshold, results, spec_path=spec, workers=workers, fmt=fmt)
            return
    if world is not None and given is None:
        _prior_classes(_world_from_knobs(world, knob), n, widths or [64, 64], init_obj, seed, out, fit_rows, fit_threshold, results, workers=workers,
                       fmt=fmt)
        return
    if results is not None:  # the function prior has no classes to set P_SGD(class) beside
        _fail(f"--results {results}: P_SGD(class) goes beside the class prior of a world; give --world WORLD")
    if given is None:
        kind, _, arg = inputs.partition(":")
        if knob and kind != "probes":
            _fail(f"--knob {knob[0]!r}: knobs set a world's; give --world WORLD or --inputs probes:WORLD")
        if kind == "boolean":
            if not arg.isdigit() or not 1 <= int(arg) <= 16:
                _fail(f"--inputs {inputs!r}: boolean:n needs a whole number 1 <= n <= 16")
            world_table = {}
        elif kind == "probes" and arg:
            w = _world_from_knobs(arg, knob, name_field="--inputs probes:WORLD")
            from ..worlds.registry import spec_name

            world_table = {"world": {"name": spec_name(w), "knobs": w.knobs.model_dump()}}
        else:
            _fail(f"--inputs {inputs!r}: expected boolean:n or probes:WORLD")
        widths = widths or [40, 40]
        if init_obj.layers is not None and len(init_obj.layers) != len(widths) + 1:
            _fail(f"--init {init!r}: {len(init_obj.layers)} bounds for the {len(widths) + 1} layers of --arch {','.join(map(str, widths))} (one per layer, output last)")
        from ..measure.prior_volume import blocks_for

        block, runs = blocks_for(n, largest=100_000, smallest=1000)
        if block * runs != n:
            err_console.print(f"{n:,} draws are no whole number of blocks: drawing {block * runs:,}")
        raw = {"kind": "function_prior", "name": "function_prior", "seeds": runs, **world_table,
               "function_prior": {"inputs": inputs, "signed": signed, "widths": widths, "init": init, "block": block, "seed": seed}}
        given = raw
    else:
        kind = given.function_prior.inputs.partition(":")[0]
    functions, name, x = _function_prior(given, out, workers)
    n = int(functions["count"].sum())
    corr = P.complexity_correlation(functions)
    if sgd_runs and kind != "boolean":
        _fail("--sgd-runs compares on a Boolean input set (--inputs boolean:n)")
    if fmt is not Format.table:
        _write_frame(functions, fmt)
    table = Table(title=f"P_prior(f), {name}: {n:,} draws, {len(functions):,} distinct functions", title_justify="left")
    for c in ("rank", "truth table (hex)", "count", "frequency", "LZ complexity"):
        table.add_column(c, justify="left" if c.startswith("truth") else "right", overflow="fold")
    for r in functions.head(top).itertuples():
        shown = r.function if len(r.function) <= 40 else r.function[:39] + "…"  # full tables are in functions.parquet
        table.add_row(str(r.Index + 1), shown, f"{r.count:,}", f"{r.frequency:.3g}", "-" if r.complexity != r.complexity else f"{r.complexity:.1f}")
    say = console.print if fmt is Format.table else err_console.print  # csv/json: the frame alone on stdout
    if fmt is Format.table:
        emit(table)
    say(f"log10 P(f) vs LZ complexity over {corr['n_functions']:,} functions: Spearman {corr['spearman']:.3f}, Pearson {corr['pearson']:.3f}")
    if min_count > 1:
        often = P.complexity_correlation(functions, min_count)
        say(f"  over the {often['n_functions']:,} functions seen at least {min_count} times: Spearman {often['spearman']:.3f}, Pearson {often['pearson']:.3f}")
    if sgd_runs:
        fp = given["function_prior"] if isinstance(given, dict) else given.function_prior.model_dump()
        _prior_vs_sgd(x, functions, fp["widths"], sgd_runs, train_size, target, fp["seed"], out)
    if out is not None:
        from ..report.prior_figures import complexity_plot, rank_plot

        try:
            functions.to_parquet(out / "functions.parquet", index=False)
            rank_plot(functions, out, name)
            complexity_plot(functions, out, name)
        except OSError as e:
            _fail(f"{out}: {e.strerror or e}")
        err_console.print(f"functions.parquet, rank.png/svg, complexity.png/svg -> {out}")


def _load_kind_spec(path: Path, kinds: tuple[str, ...]):
    """A spec file of one of `kinds`; one line and exit 2 otherwise."""
    from ..sweep import SpecError, load_spec

    try:
        spec = load_spec(path)
    except SpecError as e:
        _fail(str(e))
    if getattr(spec, "kind", "train") not in kinds:
        _fail(f"--spec {path}: not a spec of kind {' or '.join(repr(k) for k in kinds)}")
    return spec


def _function_prior(spec, out: Optional[Path], workers: Optional[int]):
    """A spec of kind "function_prior" (an object or parsed TOML) run into OUT (resumable; without --out, a
    temporary folder): (P_prior(f) from the stored runs, the setup's name, the inputs)."""
    import tempfile

    from ..api import function_prior
    from ..measure.sampled import function_inputs
    from ..sweep import parse_spec
    from ..sweep.measurements import FunctionPriorRun

    try:
        parsed = parse_spec(spec, source="function prior") if isinstance(spec, dict) else spec
    except ValueError as e:
        _fail(str(e))
    fp = parsed.function_prior
    x = function_inputs(FunctionPriorRun(world=parsed.world, function_prior=fp))
    with tempfile.TemporaryDirectory() as tmp:
        folder = out if out is not None else Path(tmp) / "function_prior"
        functions = _run_specs("prior", lambda ex, hooks: function_prior(folder, spec, executor=ex, progress=hooks), "local", workers, None)
    name = f"{x.shape[1]}-{'-'.join(map(str, fp.widths))}-1 on {fp.inputs}{' (+-1)' if fp.signed else ''}, init {fp.init}"
    return functions, name, x


def _print_functions(functions, folder) -> None:
    from ..measure.prior import complexity_correlation

    corr = complexity_correlation(functions)
    t = Table(title=f"P_prior(f): {folder}: {int(functions['count'].sum()):,} draws, {len(functions):,} distinct functions", title_justify="left")
    for c in ("rank", "truth table (hex)", "count", "frequency", "LZ complexity"):
        t.add_column(c, justify="left" if c.startswith("truth") else "right", overflow="fold")
    for r in functions.head(15).itertuples():
        t.add_row(str(r.Index + 1), r.function if len(r.function) <= 40 else r.function[:39] + "…", f"{r.count:,}", f"{r.frequency:.3g}",
                  "-" if r.complexity != r.complexity else f"{r.complexity:.1f}")
    emit(t)
    console.print(f"log10 P(f) vs LZ complexity over {corr['n_functions']:,} functions: Spearman {corr['spearman']:.3f}, Pearson {corr['pearson']:.3f}")


def _counting_cell(r) -> str:
    if r["n"] == 0:
        return "n/a"
    if r["count"] == 0:  # r["count"]: r.count is the Series method
        return f"0 of {int(r['n']):,} (<{100 * r['high']:.3g}%) >= {r['bits_low']:.1f} bits"
    bits = f"{abs(r['bits']):.1f}"  # abs: no "-0.0" for p = 1
    return f"{100 * r.p:.3g}% ({100 * r.low:.3g}-{100 * r.high:.3g}) {bits} bits"


def _print_counting(table, diagnostics, folder) -> None:
    """The counting table of a folder of kind "counting": per condition, P(class | S) per source, -log2 P."""
    for cond, g in table.groupby("condition", sort=False):
        t = g.set_index(["verdict", "source"])
        sources = [s for s in ("naive", "prior", "nngp", "sgd") if s in set(g.source)]
        t_rich = Table(title=f"P(class | S): % (95% interval, ESS for the NNGP) and -log2 P in bits: {folder}: {cond}", title_justify="left")
        for c in ("verdict", *sources):
            t_rich.add_column(c, justify="left" if c == "verdict" else "right")
        for v in dict.fromkeys(g.verdict):
            t_rich.add_row(v, *[_counting_cell(t.loc[(v, s)]) for s in sources])
        emit(t_rich)
    for d in diagnostics.to_dict("records"):
        console.print(f"  NNGP posterior of {d['condition']}: {d['samples']:,} samples over {d['runs']} runs, ESS min {d['min_ess']:,.0f}, "
                      f"internal {d['ess_internal']:,.0f}, deceptive {d['ess_deceptive']:,.0f}; drift |z| at most {d['drift_z_max']:.1f}; "
                      f"{d['stuck']} stuck; P_SGD from {d['sgd_runs']} runs", highlight=False)


def _prior_vs_sgd(x, functions, widths, runs, train_size, target, seed, out) -> None:
    from ..measure.prior import pack_bits, to_hex
    from ..measure.prior_sgd import compare_functions, prior_given_subset, sgd_functions, training_subset

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
        from ..report.prior_figures import sgd_vs_prior_plot

        out.mkdir(parents=True, exist_ok=True)
        both.to_parquet(out / "sgd_vs_prior.parquet", index=False)
        sgd_vs_prior_plot(both, stats, out)


def _prior_classes(w, n, widths, init_obj, seed, out, fit_rows, fit_threshold, results, spec_path=None, workers=None, fmt=None) -> None:
    """`prior --world` (or `--spec` of kind "prior"): the draws as a spec run into OUT (resumable; without
    --out, a temporary folder), P_prior(class) from its loaded frame."""
    import tempfile

    from ..api import prior_volume
    from ..api import sgd_beside_prior as compare_with_sgd
    from ..measure.prior_volume import prior_spec
    from ..sweep import SpecError, StoreError, load_spec
    from ..worlds import make_world

    if spec_path is not None:
        try:
            spec = load_spec(spec_path)
        except SpecError as e:
            _fail(str(e))
        if getattr(spec, "kind", "train") != "prior":
            _fail(f"--spec {spec_path}: not a spec of kind \"prior\"")
    else:
        if len(set(widths)) != 1:
            _fail(f"--world draws the lab's MLPEnsemble, which needs equal hidden widths (got {widths})")
        if init_obj.name != "torch" or init_obj.bias != 1:
            _fail("--world draws the lab's model family, whose init is torch (nn.Linear default)")
        n_fit = len(w.datasets[w.fit_dataset].x)
        if fit_rows is not None and fit_rows > n_fit:
            _fail(f"--fit-rows {fit_rows}: must be between 1 and {n_fit}, {w.name}'s training inputs")
        spec = prior_spec(w, n, depth=len(widths), width=widths[0], seed=seed, fit_rows=fit_rows, fit_threshold=fit_threshold)
        if spec["seeds"] * spec["prior"]["block"] != n:
            err_console.print(f"{n:,} draws are no whole number of blocks: drawing {spec['seeds'] * spec['prior']['block']:,}")
    if results is not None and not results.is_dir():
        _fail(f"{results}: no such results folder")
    with tempfile.TemporaryDirectory() as tmp:
        folder = out if out is not None else Path(tmp) / "prior"
        table, acc = _run_specs("prior", lambda ex, hooks: prior_volume(folder, spec, executor=ex, progress=hooks), "local", workers, None)
    try:
        wide = compare_with_sgd(table, results)
    except StoreError as e:
        _fail(str(e))
    world_name = spec.world.name if spec_path is not None else spec["world"]["name"]
    prior_cfg = spec.prior.model_dump() if spec_path is not None else spec["prior"]
    family = make_world(world_name, spec.world.knobs if spec_path is not None else spec["world"]["knobs"]).family
    shape = f"{prior_cfg['depth']}x{prior_cfg['width']} {'transformers (depth x width)' if family == 'transformer' else 'MLPs'}"
    if fmt not in (None, Format.table):
        _write_frame(table, fmt)  # the long table class_prior.csv holds
        err_console.print(acc["note"], markup=False, highlight=False, soft_wrap=True)
    else:
        _print_prior(wide, f"Prior volume in % with 95% Wilson intervals: {world_name}, {shape}, {acc['samples']:,} draws", acc["note"])
    if out is not None:
        try:
            table.to_csv(out / "class_prior.csv", index=False)
        except OSError as e:
            _fail(f"{out}: {e.strerror or e}")
