"""`theory` and `theory fit`: the texts' argument as a quantitative model, its predictions and its fit on a results folder."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ._common import CountingSource, Format, _ci, _fail, _num, _table, app, console, err_console

theory_app = typer.Typer(add_completion=False, help="The argument as a model: its predictions (no subcommand), or `fit` on a results folder.")
app.add_typer(theory_app, name="theory")


@theory_app.callback(invoke_without_command=True)
def theory(
    ctx: typer.Context,
    param: list[str] = typer.Option([], "--param", "-p", help="Model parameter NAME=VALUE (repeatable); the parameters table lists them."),
    from_results: Optional[Path] = typer.Option(None, "--from-results", help="Set the path model's rates from a results folder's measured paths."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Measured prior volumes CLASS=P,... (e.g. internal=0.1,corrigible=0.05,deceptive=0.01)."),
    counting: Optional[Path] = typer.Option(None, "--counting", help="Description lengths -log2 P(class) from a counting result: a folder of kind \"counting\" or a counting.parquet."),
    counting_source: CountingSource = typer.Option(CountingSource.nngp, help="With --counting: nngp (P_B(class | S)), prior (P_prior) or naive (the naive count)."),
    counting_condition: Optional[str] = typer.Option(None, help="With --counting: the condition whose counts set the lengths (default: the first)."),
    runs: int = typer.Option(10_000, min=1, help="Simulated training paths (high path dependence)."),
    sensitivity_runs: int = typer.Option(1000, min=1, help="Simulated paths per parameter change in the sensitivity table."),
    seed: int = typer.Option(0, help="Seed of the numpy generator (same seed, same output)."),
    max_steps: int = typer.Option(3000, min=1, help="Steps after which a simulated run counts as not converged."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (every table in one CSV, a `table` column naming each row's) or json (every table)."),
):
    """The argument as a model: P(class) under high path dependence (a stochastic path model) and low
    path dependence (simplicity and speed biases), the parameters used and the sensitivity to each."""
    if ctx.invoked_subcommand is not None:
        return
    from ..api import theory_params as params_from_results
    from ..sweep import StoreError
    from ..theory import BiasParams, PathParams, apply_assignments, bias_params_from_prior, predict

    counting_source = counting_source.value
    if counting is None and (counting_condition is not None or counting_source != "nngp"):
        _fail(f"--{'counting-condition' if counting_condition is not None else 'counting-source'}: only with --counting (the counting result it reads)")
    path, bias, sources = PathParams(), BiasParams(), {}
    try:
        if from_results is not None:
            path, src = params_from_results(from_results)
            sources.update(src)
        if prior is not None and counting is not None:
            _fail("--prior and --counting both set the description lengths: give one")
        if prior is not None:
            bias, src = bias_params_from_prior(_volumes(prior), bias)
            sources.update(src)
        if counting is not None:
            from ..api import counting_frame
            from ..theory import bias_params_from_counting

            bias, src = bias_params_from_counting(counting_frame(counting), counting_source, counting_condition, bias)
            sources.update(src)
        path, bias = apply_assignments(path, bias, param, sources)
    except (ValueError, StoreError) as e:
        _fail(str(e))
    except KeyError as e:  # a results folder without the trajectory columns
        _fail(f"{from_results}: results lack column {e}")
    with err_console.status("simulating training paths"):
        tables = predict(path, bias, runs=runs, seed=seed, sensitivity_runs=sensitivity_runs, max_steps=max_steps, sources=sources)
    if fmt is Format.csv:  # every table in one long CSV: a `table` column names the table of each row
        import pandas as pd

        sys.stdout.write(pd.concat([v.assign(table=k)[["table", *v.columns]] for k, v in tables.items()], ignore_index=True).to_csv(index=False))
        return
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


def _volumes(prior: str) -> dict[str, float]:
    volumes = {}
    for kv in prior.split(","):
        cls, sep, raw = kv.partition("=")
        try:
            volumes[cls.strip()] = float(raw)
        except ValueError:
            _fail(f"--prior {kv!r}: expected CLASS=PROBABILITY")
    return volumes


def _fit(results: Path, fit: list[str], predict: list[str], prior: str | None, seed: int, draws: int = 300):
    """`fit_theory` on a results folder, every user error one line and exit 2."""
    from ..sweep import Store, StoreError, load
    from ..theory import BiasParams, FitError, bias_params_from_prior, fit_theory

    try:
        bias = bias_params_from_prior(_volumes(prior))[0] if prior else BiasParams()
        store = Store(results)
        runs = load(results)
        axes = [a for a in store.axes() if a in runs.columns] or ["condition"]
        with err_console.status("fitting the theory, the null and the bias model"):
            return fit_theory(runs, fit, predict, axes, seed=seed, bias=bias, draws=draws)
    except (FitError, StoreError) as e:
        _fail(str(e))
    except ValueError as e:  # a bad --prior
        _fail(str(e))


class FitTable(str, Enum):
    """The tables of a theory fit (theory.TheoryFit.tables)."""

    conditions = "conditions"
    parameters = "parameters"
    scores = "scores"
    verdicts = "verdicts"
    predictions = "predictions"
    reversals = "reversals"
    claims = "claims"


@theory_app.command("fit")
def theory_fit(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    fit: list[str] = typer.Option([], "--fit", help="Conditions to fit on: axis=value[,axis=value] (repeatable; any may match)."),
    predict: list[str] = typer.Option([], "--predict", help="Held-out conditions to predict: axis=value[,axis=value] (repeatable)."),
    prior: Optional[str] = typer.Option(None, "--prior", help="Measured prior volumes CLASS=P,... for the bias model's description lengths."),
    seed: int = typer.Option(0, help="Seed of the fit's starts, posterior draws and bootstrap."),
    draws: int = typer.Option(300, min=10, help="Draws from each model's Laplace posterior (predictions, intervals)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (the table named by --table) or json (every table)."),
    table: FitTable = typer.Option(FitTable.predictions, "--table", help="With --format csv: the table to print."),
):
    """Fit the argument's models and a null that knows nothing of goals on some conditions, score them
    on held-out ones (log-likelihood and Brier score per run), and say whether the theory is falsified,
    supported or neither there (docs/theory.md, "Fitting")."""
    table = table.value
    res = _fit(results, fit, predict, prior, seed, draws)
    tables = res.tables()
    if fmt is Format.csv:
        sys.stdout.write(tables[table].to_csv(index=False))
        return
    if fmt is Format.csv:  # every table in one long CSV: a `table` column names the table of each row
        import pandas as pd

        sys.stdout.write(pd.concat([v.assign(table=k)[["table", *v.columns]] for k, v in tables.items()], ignore_index=True).to_csv(index=False))
        return
    if fmt is Format.json:
        out = {k: json.loads(v.to_json(orient="records")) for k, v in tables.items()}
        out.update(fit=res.fit, predict=res.predict, verdict=res.verdict)
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return
    _print_fit(res)


def _print_fit(res) -> None:
    conds = res.conditions
    _table(
        "Conditions and what the models read from them (none of it the verdict)",
        ["role", "condition", "runs", "steps to situation", "internal score at start", "own goal %", "cue distance", "steps"],
        [[r["role"], r["condition"], str(r["runs"]), _num(r["sa_steps"]), f"{r['initial_proxy']:.2f}", f"{100 * r['own_goal']:.0f}",
          _num(r["distance"], "g"), _num(r["train_steps"])] for r in conds.to_dict("records")],
        left=2,
    )
    par = res.parameters
    free = par[par.status == "free (fitted)"]
    _table(
        "Free parameters fitted on the fit conditions: posterior mode (95% Laplace interval), the texts' value, the prior",
        ["model", "param", "fitted (95%)", "texts", "prior"],
        [[r["model"], r["param"], f"{r['value']:.3g} ({r['low']:.3g}-{r['high']:.3g})", _num(r["texts"], ".3g"), r["prior"]] for r in free.to_dict("records")],
        left=2,
    )
    other = par[par.status != "free (fitted)"]
    _table(
        "The other parameters: measured, fixed at the texts' values, or unused by the race",
        ["model", "param", "value", "status", "source"],
        [[r["model"], r["param"], _num(r["value"], ".4g"), r["status"], r["source"]] for r in other.to_dict("records")],
        left=5,
    )
    sc = res.scores
    _table(
        "Scores per run (mean, 95% bootstrap interval over runs): log-likelihood of the verdict (higher is better), Brier score (lower is better)",
        ["conditions", "model", "runs", "log-likelihood", "Brier"],
        [[r["role"], r["model"], str(r["runs"]), f"{r['log_lik']:.3f} ({r['log_lik_low']:.3f} to {r['log_lik_high']:.3f})",
          f"{r['brier']:.3f} ({r['brier_low']:.3f}-{r['brier_high']:.3f})"] for r in sc.to_dict("records")],
        left=2,
    )
    v = res.verdicts
    _table(
        "Held out: log-likelihood per run minus the null's (95% bootstrap interval); supported above 0, falsified below, else inconclusive",
        ["theory", "held-out runs", "difference", "verdict"],
        [[r["theory"], str(r["held_out_runs"]), f"{r['diff_log_lik']:+.3f} ({r['low']:+.3f} to {r['high']:+.3f})", f"[bold]{r['verdict']}[/]"] for r in v.to_dict("records")],
        left=1,
    )
    pr = res.predictions
    keep = ["P(deceptive)", "P(mixed)", "P(internal)", "P(proxy)", "mean gap"]
    pr = pr[pr.quantity.isin(keep)]
    wide = []
    for (cond, q), g in pr.groupby(["condition", "quantity"], sort=False):
        g = g.set_index("model")
        m = g.iloc[0]
        row = [cond, q, f"{100 * m.measured:.0f} ({100 * m.measured_low:.0f}-{100 * m.measured_high:.0f})" if q != "mean gap" else f"{m.measured:+.2f}"]
        for model in g.index:
            r = g.loc[model]
            row.append(f"{100 * r.predicted:.0f} ({100 * r.predicted_low:.0f}-{100 * r.predicted_high:.0f})" if q != "mean gap" else f"{r.predicted:+.2f}")
        wide.append(row)
    models = list(dict.fromkeys(pr.model))
    _table("Held-out conditions: measured (95% Wilson) and predicted % (95% posterior interval; texts: unfitted)", ["condition", "quantity", "measured", *models], wide, left=2)
    rev = res.reversals
    _table(
        "What reverses the fitted theory's most likely held-out verdicts: the nearest single-parameter change (others at the mode), and P(X < v) under the posterior",
        ["model", "param", "fitted", "reverses", "P(X < v)", "condition", "change"],
        [[r["model"], r["param"], f"{r['value']:.3g}", r["reverses"], _num(r["posterior_quantile"], ".3f"), r["condition"], r["to"]] for r in rev.to_dict("records")],
        left=2,
    )
    if not res.claims.empty:
        _table(
            "Claims the fit speaks to, judged only where their preconditions hold, by the rule shown (measured beside the fitted theory and the texts)",
            ["claim", "preconditions", "judged on", "rule", "measured", "fitted theory", "texts' assumption", "verdict"],
            [[r["claim"], r["preconditions"], r["judged_on"], r["rule"], r["measured"], r["fitted_theory"], r["texts_assumption"], f"[bold]{r['verdict']}[/]"]
             for r in res.claims.to_dict("records")],
            left=4,
        )
    console.print(f"verdict (path model against the null, held out): [bold]{res.verdict}[/]")
