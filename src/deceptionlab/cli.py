"""The `deceptionlab` command line: run experiments, show their outcomes, list worlds.

Every user error (a bad spec, an unusable results folder) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
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

from .measure import VERDICTS, frequencies
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


def _ci(p: float, lo: float, hi: float) -> str:
    return f"{100 * p:.0f} ({100 * lo:.0f}-{100 * hi:.0f})"


def _num(v, fmt: str = ".0f") -> str:
    return "-" if v is None or v != v else format(v, fmt)


def _table(title: str, columns: list[str], rows: list[list[str]], left: int = 0) -> None:
    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i < left else "right", overflow="fold")
    for r in rows:
        table.add_row(*r)
    console.print(table)


def _gain_sparklines(gains, by: list[str]) -> dict[tuple, str]:
    """(condition values..., phase, head) -> a sparkline of log10 gain per step, on one scale for all rows."""
    import numpy as np

    if gains.empty:
        return {}
    logs = np.log10(gains.gain_per_step.clip(lower=1e-7))
    lo, hi = float(logs.min()), float(logs.max())
    marks = "▁▂▃▄▅▆▇█"
    out = {}
    for key, g in gains.assign(log=logs).groupby([*by, "phase", "head"], sort=False):
        levels = ((g.log - lo) / max(hi - lo, 1e-9) * (len(marks) - 1)).round().astype(int)
        out[tuple(str(k) for k in key)] = "".join(marks[v] for v in levels)
    return out


@app.command()
def paths(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (the path-dependence table) or json (every table)."),
    threshold: float = typer.Option(0.9, min=0.5, max=1.0, help="Template score at which the objective counts as generalised."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where tables (CSV) and figures (PNG, SVG) go (default: RESULTS/paths)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write the figures."),
    situation: Optional[str] = typer.Option(
        None, help="Decodable that means 'knows its situation' (default: situation_x_state where the world has it, else situation)."
    ),
):
    """Training paths and path dependence per condition: which comes first (C1), gain per step (C2),
    path length per class (C3), path dependence (A-F, seed shares, loss barriers) and the regime (C8)."""
    from .measure.path_dependence import THRESHOLDS
    from .report.paths import analyse_paths, condition_axes, default_situation

    try:
        runs = load(results)
        runs_axes = condition_axes(Store(results), runs)
        asked, situation = situation, situation or default_situation(runs)
        if asked and f"traj_decode_{situation}" not in runs:  # a world with no decodables still gets C2, C3, C8
            names = sorted(c.removeprefix("traj_decode_") for c in runs.columns if c.startswith("traj_decode_"))
            _fail(f"--situation {situation}: no such decodable in {results} (decodables: {', '.join(names) or 'none'})")
        tables = analyse_paths(results, out, threshold=threshold, situation=situation, plots=plots)
    except StoreError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{out or results}: {e.strerror or e}")
    if fmt is Format.csv:
        sys.stdout.write(tables["path_dependence"].to_csv(index=False))
        return
    if fmt is Format.json:
        sys.stdout.write(json.dumps({k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}, indent=1) + "\n")
        return
    by = runs_axes
    key = lambda r: [str(r[a]) for a in by]  # noqa: E731
    ev = tables["events"]
    _table(
        f"C1 path events per condition ('situation known': {situation} decodable; medians over runs; steps are checkpoints): {results}",
        [*by, "runs", "situation first % (95% CI)", "situation known at", "objective generalises at", "never %", "verdict settled at", "derailments"],
        [[*key(r), str(r["n"]), _ci(r["p_situation_first"], r["low"], r["high"]), _num(r["median_sa_step"]), _num(r["median_objective_step"]),
          f"{100 * r['p_objective_never']:.0f}", _num(r["median_verdict_step"]), f"{r['mean_derailments']:.2f}"] for r in ev.to_dict("records")],
        left=len(by),
    )
    ret = tables["returns"]
    curve = _gain_sparklines(tables["gains"], by)
    _table(
        "C2 returns per phase and head: the gain-per-step curve (median over runs, log scale, one mark per checkpoint, shared scale), "
        "the first interval's gain per step, and steps into the phase until 90% of its loss drop (median, IQR)",
        [*by, "phase", "head", "gain/step curve", "first gain/step", "loss drop", "steps to 90% (IQR)"],
        [[*key(r), r["phase"], r["head"], curve.get((*key(r), r["phase"], r["head"]), ""), _num(r["first_gain_per_step"], ".2e"),
          _num(r["total_drop"], ".3f"), f"{_num(r['steps_to_90pct'])} ({_num(r['steps_low'])}-{_num(r['steps_high'])})"] for r in ret.to_dict("records")],
        left=len(by) + 3,
    )
    cl = tables["classes"]
    _table(
        "C3 path per final verdict: steps until the verdict holds to the end (median, IQR), training accuracy gained per step on the way",
        [*by, "verdict", "runs", "path length (IQR)", "accuracy gain/step", "derailments"],
        [[*key(r), r["verdict"], str(r["runs"]), f"{_num(r['path_length'])} ({_num(r['path_low'])}-{_num(r['path_high'])})",
          _num(r["accuracy_gain_per_step"], ".2e"), f"{r['derailments']:.2f}"] for r in cl.to_dict("records")],
        left=len(by) + 1,
    )
    pdp = tables["path_dependence"]
    _table(
        "C8 path dependence per condition: (A) verdict entropy, score variance; (C) clusters of final functions; (D) ARI and (E) prediction at mid-training; "
        "variance shares of init and data-order seeds",
        [*by, "runs", "entropy bits", "score var", "clusters (major)", "largest %", "disagree %", "mid step", "ARI mid", "predicts mid (base)",
         "init share (chance)", "data share", "regime"],
        [[*key(r), str(r["n"]), f"{r['verdict_entropy']:.2f}", f"{r['score_variance']:.4f}", f"{r['clusters']} ({r['major_clusters']})",
          f"{100 * r['largest_cluster']:.0f}", f"{100 * r['mean_disagreement']:.1f}", str(r["mid_step"]), f"{r['ari_mid']:.2f}",
          f"{100 * r['predict_mid']:.0f} ({100 * r['base_rate']:.0f})", f"{_num(r['init_share'], '.2f')} ({_num(r['init_share_chance'], '.2f')})",
          _num(r["data_share"], ".2f"), f"[bold]{r['regime']}[/]"] for r in pdp.to_dict("records")],
        left=len(by),
    )
    console.print(
        f"regime rule: high when verdict entropy >= {THRESHOLDS['high_entropy_bits']} bits or >= 2 major clusters "
        f"(a cluster: functions within {100 * THRESHOLDS['cluster_cut']:.0f}% average disagreement, average linkage; major: >= "
        f"{100 * THRESHOLDS['major_cluster']:.0f}% of runs and >= 2 runs); low otherwise; undetermined below {THRESHOLDS['min_runs']} runs"
    )
    sens = tables["sensitivity"]
    if not sens.empty:
        others = [c for c in sens.columns if c in by]
        _table(
            "(B, F) sensitivity to one axis, other axes fixed: runs paired by (seed, data_seed); P(verdict changes) % with 95% CI beside "
            "P(two unrelated runs differ); total-variation distance of the verdict distributions with a bootstrap 95% CI",
            ["axis", "change", *others, "pairs", "verdict changes %", "unrelated differ %", "functions disagree %", "TV (95% CI)"],
            [[r["axis"], f"{r['from']} -> {r['to']}", *("" if r[a] != r[a] else str(r[a]) for a in others), str(r["pairs"]),
              _ci(r["p_changed"], r["low"], r["high"]), f"{100 * r['p_differ_unrelated']:.0f}", f"{100 * r['mean_disagreement']:.1f}",
              f"{r['tv']:.2f} ({r['tv_low']:.2f}-{r['tv_high']:.2f})"] for r in sens.to_dict("records")],
            left=2 + len(others),
        )
    bar = tables["barriers"]
    if bar.empty:
        console.print("loss barriers: no stored weights (set save_weights = true in the spec)")
    else:
        _table(
            "Loss barriers on the straight line between two runs' final weights (policy loss on its training data, nats)",
            [*by, "pairs of", "pairs", "mean (95% CI)", "median", "barrier > 0.01 %"],
            [[*key(r), r["pairs_of"], str(r["pairs"]), f"{r['mean']:.3f} ({_num(r['low'], '.3f')}-{_num(r['high'], '.3f')})",
              f"{r['median']:.3f}", f"{100 * r['p_barrier']:.0f}"] for r in bar.to_dict("records")],
            left=len(by) + 1,
        )
    where = out or results / "paths"
    err_console.print(f"tables (CSV){' and figures (PNG, SVG)' if plots else ''} -> {where}")


# -- speed (issue 4): compute each class needs, and training under a compute penalty (C6, C7) -------


def _numbers(text: str, kind, what: str) -> tuple:
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        _fail(f"{what}: expected comma-separated {kind.__name__}s, got {text!r}")
    if not values:
        _fail(f"{what}: no values given")
    return values


def _speed_world(name: str, knobs: list[str]):
    import json

    from pydantic import ValidationError

    from .worlds import get_world

    try:
        cls = get_world(name)
    except ValueError as e:
        _fail(str(e))
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
        world = cls(given)
    except ValidationError as e:
        err = e.errors()[0]
        msg = "unknown knob" if err["type"] == "extra_forbidden" else err["msg"]
        _fail(f"--knob {'.'.join(map(str, err['loc']))}: {msg} (knobs of {name}: {', '.join(cls.Knobs.model_fields)})")
    world.check()
    return world


def _print_speed(res, folder: Path) -> None:
    import math

    from .measure import ponder_summary, wilson

    t = Table(title=f"Compute each class needs to be imitated (cheapest architecture reaching its verdict): {folder}", title_justify="left")
    for c in ("class", "depth", "width", "forward FLOPs", "seeds reaching it % (95% CI)"):
        t.add_column(c, justify="left" if c == "class" else "right")
    n_seeds = res.meta["imitation"]["seeds"]
    for cls, depth, width, flops, share in res.compute.itertuples(index=False):
        if math.isnan(depth):  # never reached on the grid
            t.add_row(cls, "-", "-", "not reached", "0")
            continue
        lo, hi = wilson(round(share * n_seeds), n_seeds)
        t.add_row(cls, f"{depth:.0f}", f"{width:.0f}", f"{flops:,.0f}", f"{100 * share:.0f} ({100 * lo:.0f}-{100 * hi:.0f})")
    console.print(t)

    freq = frequencies(res.ponder_runs, by=["width", "beta"])
    summary = ponder_summary(res.ponder_runs).set_index(["width", "beta"])
    p = res.meta["ponder"]
    t = Table(
        title=f"Early-exit models under a compute penalty beta ({p['penalty']}, {p['depth']} layers): verdict % (95% Wilson) and performance",
        title_justify="left",
    )
    for c in ("width", "beta", "runs", *VERDICTS, "train acc", "deploy base", "exit layer"):
        t.add_column(c, justify="right")
    for (width, beta), g in freq.groupby(["width", "beta"], sort=False):
        s = summary.loc[(width, beta)]
        cells = [f"{100 * r.p:.0f} ({100 * r.low:.0f}-{100 * r.high:.0f})" for r in g.itertuples()]
        t.add_row(str(width), f"{beta:g}", str(int(s.n)), *cells, f"{s.train_accuracy:.3f}", f"{s.deploy_base:.3f}", f"{s.expected_exit:.2f}")
    console.print(t)


@app.command()
def speed(
    out: Path = typer.Argument(..., help="Output folder; if it already holds speed results they are shown, not recomputed."),
    world: str = typer.Option("bitworld", help="World to measure (`deceptionlab worlds` lists them)."),
    knob: list[str] = typer.Option([], "--knob", "-k", help="World knob KNOB=VALUE (repeatable)."),
    betas: str = typer.Option("0,0.01,0.1,1", help="Compute-penalty weights, comma-separated, >= 0."),
    seeds: int = typer.Option(32, min=1, help="Seeds per (beta, width) of the early-exit sweep."),
    widths: str = typer.Option("8,32", help="Early-exit model widths."),
    depth: int = typer.Option(3, min=1, max=16, help="Early-exit trunk layers (= exits)."),
    steps: int = typer.Option(1000, min=1, help="Early-exit training-objective steps."),
    own_goal_steps: int = typer.Option(300, min=0, help="Early-exit proxy pretraining steps before them (0: none)."),
    penalty: str = typer.Option("layers", help="'layers' (beta * E[exit layer]) or 'kl' (PonderNet: beta * KL to a geometric prior)."),
    imitation_depths: str = typer.Option("1,2,3", help="Imitation grid: depths."),
    imitation_widths: str = typer.Option("1,2,3,4,8,16", help="Imitation grid: widths."),
    imitation_seeds: int = typer.Option(4, min=1, help="Imitation grid: seeds per (class, architecture)."),
    imitation_steps: int = typer.Option(400, min=1, help="Imitation grid: full-batch Adam steps."),
    threads: int = typer.Option(1, min=1, help="Torch threads (the matmuls are tiny: one thread is fastest on a shared machine)."),
    force: bool = typer.Option(False, "--force", help="Recompute even if OUT holds results."),
):
    """Speed prior (C6, C7): compute each class needs, and what a compute penalty does to verdicts and performance."""
    import torch

    from .measure import ImitationConfig, PonderConfig, SpeedResults, measure_speed, plot_speed
    from .models.ponder import PENALTIES

    beta_values = _numbers(betas, float, "--betas")
    if any(not b >= 0 or b == float("inf") for b in beta_values):
        _fail(f"--betas: must be finite non-negative numbers, got {betas!r}")
    if penalty not in PENALTIES:
        _fail(f"--penalty: unknown penalty {penalty!r} (known: {', '.join(PENALTIES)})")
    width_values = _numbers(widths, int, "--widths")
    im_depths, im_widths = _numbers(imitation_depths, int, "--imitation-depths"), _numbers(imitation_widths, int, "--imitation-widths")
    if min((*width_values, *im_depths, *im_widths)) < 1:
        _fail("--widths, --imitation-depths, --imitation-widths: every value must be at least 1")
    w = _speed_world(world, knob)
    if SpeedResults.stored(out) and not force:
        err_console.print(f"showing the speed results stored in {out} (--force recomputes)")
        _print_speed(SpeedResults.load(out), out)
        return
    torch.set_num_threads(threads)
    imitation = ImitationConfig(depths=im_depths, widths=im_widths, seeds=imitation_seeds, steps=imitation_steps)
    ponder = PonderConfig(betas=beta_values, widths=width_values, depth=depth, seeds=seeds, steps=steps, own_goal_steps=own_goal_steps, penalty=penalty)
    with err_console.status("measuring") as status:
        res = measure_speed(w, imitation, ponder, on_progress=lambda m: status.update(f"measuring: {m} done"))
    try:
        res.save(out)
        files = plot_speed(res.ponder_runs, res.ponder_cells, out)
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    _print_speed(res, out)
    err_console.print(f"wrote results and {len(files)} figures to {out}")


# -- theory (issue 5): the argument of the texts as a quantitative model ------------------------------


@app.command()
def theory(
    param: list[str] = typer.Option([], "--param", "-p", help="Model parameter NAME=VALUE (repeatable); the parameters table lists them."),
    from_results: Optional[Path] = typer.Option(None, "--from-results", help="Set the path model's rates from a results folder's measured paths."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Measured prior volumes CLASS=P,... (e.g. internal=0.1,corrigible=0.05,deceptive=0.01)."),
    runs: int = typer.Option(10_000, min=1, help="Simulated training paths (high path dependence)."),
    sensitivity_runs: int = typer.Option(1000, min=1, help="Simulated paths per parameter change in the sensitivity table."),
    seed: int = typer.Option(0, help="Seed of the numpy generator (same seed, same output)."),
    max_steps: int = typer.Option(3000, min=1, help="Steps after which a simulated run counts as not converged."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
):
    """The argument as a model: P(class) under high path dependence (a stochastic path model) and low
    path dependence (simplicity and speed biases), the parameters used and the sensitivity to each."""
    from .theory import BiasParams, PathParams, apply_assignments, bias_params_from_prior, params_from_results, predict

    if fmt is Format.csv:
        _fail("--format: table or json (theory prints several tables)")
    path, bias, sources = PathParams(), BiasParams(), {}
    try:
        if from_results is not None:
            path, src = params_from_results(from_results)
            sources.update(src)
        if prior is not None:
            volumes = {}
            for kv in prior.split(","):
                cls, sep, raw = kv.partition("=")
                try:
                    volumes[cls.strip()] = float(raw)
                except ValueError:
                    _fail(f"--prior {kv!r}: expected CLASS=PROBABILITY")
            bias, src = bias_params_from_prior(volumes, bias)
            sources.update(src)
        path, bias = apply_assignments(path, bias, param, sources)
    except (ValueError, StoreError) as e:
        _fail(str(e))
    except KeyError as e:  # a results folder without the trajectory columns
        _fail(f"{from_results}: results lack column {e}")
    with err_console.status("simulating training paths"):
        tables = predict(path, bias, runs=runs, seed=seed, sensitivity_runs=sensitivity_runs, max_steps=max_steps, sources=sources)
    if fmt is Format.json:
        out = {k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}
        out["deceptive_shorter"] = tables["path_quantities"].attrs["deceptive_shorter"]
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return
    hp = tables["high_path_dependence"]
    _table(
        f"High path dependence: P(outcome) % (95% Wilson CI) over {runs} simulated paths (seed {seed}), and steps to it (median, IQR)",
        ["outcome", "runs", "P % (95% CI)", "steps to it (IQR)"],
        [[r["outcome"], str(r["count"]), _ci(r["p"], r["low"], r["high"]),
          f"{_num(r['median_steps'])} ({_num(r['steps_q25'])}-{_num(r['steps_q75'])})"] for r in hp.to_dict("records")],
        left=1,
    )
    pq = tables["path_quantities"]
    _table(
        "The texts' path factors, each path followed alone: steps it needs, performance gain per step (mean, and at its end)",
        ["path", "steps", "gain/step", "gain/step at the end"],
        [[r["path"], _num(r["steps"]), _num(r["gain_per_step"], ".2e"), _num(r["final_gain_per_step"], ".2e")] for r in pq.to_dict("records")],
        left=1,
    )
    console.print(f"the deceptive path is shorter (C3): {'yes' if pq.attrs['deceptive_shorter'] else 'no'}")
    lp = tables["low_path_dependence"]
    _table(
        "Low path dependence: P(class) ∝ exp(-w_simplicity * bits - w_speed * steps), in %",
        ["class", "description bits", "compute steps", "simplicity only", "speed only", "P %"],
        [[r["class"], f"{r['description_bits']:.2f}", f"{r['compute_steps']:.2f}", f"{100 * r['p_simplicity_only']:.1f}",
          f"{100 * r['p_speed_only']:.1f}", f"[bold]{100 * r['p']:.1f}[/]"] for r in lp.to_dict("records")],
        left=1,
    )
    _table(
        "Parameters",
        ["model", "name", "value", "source", "meaning"],
        [[r["model"], r["name"], f"{r['value']:.4g}", r["source"], r["meaning"]] for r in tables["parameters"].to_dict("records")],
        left=5,
    )
    sens = tables["sensitivity"]
    _table(
        f"Sensitivity: change in P (percentage points) when the parameter goes from -25% to +25% (clipped to its range); "
        f"high path dependence with {sensitivity_runs} paths, same seed",
        ["model", "param", "value", "range", "d internal", "d corrigible", "d deceptive"],
        [[r["model"], r["param"], f"{r['value']:.4g}", f"{r['low_value']:.4g}-{r['high_value']:.4g}",
          *(_num(100 * r[f"d_{c}"], "+.1f") if f"d_{c}" in r else "-" for c in ("internal", "corrigible", "deceptive"))]
         for r in sens.to_dict("records")],
        left=2,
    )
    rev = tables["reversals"]
    fmt_change = lambda f, who: "-" if f != f else f"x{f:g} -> {who}"  # noqa: E731
    _table(
        "What reverses the conclusion: per parameter, the smallest change (x factor, down and up; others fixed) after which another "
        "outcome is the most likely",
        ["model", "param", "value", "most likely now", "lowering it", "raising it"],
        [[r["model"], r["param"], f"{r['value']:.4g}", r["leader"], fmt_change(r["down_factor"], r["down_leader"]), fmt_change(r["up_factor"], r["up_leader"])]
         for r in rev.to_dict("records")],
        left=2,
    )


@app.command()
def report(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write (figures go beside it, in <name>_figures/)."),
    speed: Optional[Path] = typer.Option(None, help="A folder written by `deceptionlab speed` (claims C6, C7)."),
    prior_samples: int = typer.Option(20_000, min=0, help="Random parameter draws for the class prior (claim C5); 0 skips it."),
):
    """One self-contained HTML report: the claims table (C1-C11), verdicts, paths, path dependence, figures."""
    from .measure import SpeedResults
    from .report.html import Figure, write_report

    extra, speed_results = [], None
    if speed is not None:
        if not SpeedResults.stored(speed):
            _fail(f"--speed {speed}: no speed results there (run `deceptionlab speed {speed}` first)")
        speed_results = SpeedResults.load(speed)
        for name, title in (("verdicts_vs_beta", "Verdicts as the ponder penalty grows (C6)"), ("performance_vs_beta", "Performance as the ponder penalty grows (C7)"),
                            ("exit_layer_per_cell", "Expected exit layer per probe cell")):
            extra.append(Figure(name, title, speed / f"{name}.png"))
    try:
        path = write_report(results, out, speed=speed_results, prior_samples=prior_samples, extra_figures=extra)
    except StoreError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    err_console.print(f"report -> {path} (figures in {path.with_name(path.stem + '_figures')}/)")


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
