"""`paths`: training paths and path dependence of a results folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ._common import Format, _check_out, _ci, _fail, _num, _table, app, console, err_console, stages


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
    _check_out(out)
    from ..api import analyse_paths, conditions
    from ..measure.path_dependence import THRESHOLDS
    from ..measure.paths import default_situation
    from ..sweep import StoreError, load
    from ..worlds import WorldError

    try:
        runs = load(results)
        runs_axes = conditions(results, runs)
        asked, situation = situation, situation or default_situation(runs)
        if asked and f"traj_decode_{situation}" not in runs:  # a world with no decodables still gets C2, C3, C8
            names = sorted(c.removeprefix("traj_decode_") for c in runs.columns if c.startswith("traj_decode_"))
            _fail(f"--situation {situation}: no such decodable in {results} (decodables: {', '.join(names) or 'none'})")
        with stages("paths") as stage:
            tables = analyse_paths(results, out, threshold=threshold, situation=situation, plots=plots, runs=runs, progress=stage)
    except StoreError as e:
        _fail(str(e))
    except WorldError as e:  # loss barriers rebuild the world
        _fail(f"{results}: its world {e}")
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
    gp = gap_paths(runs, by)
    _table(
        "The compliance gap along training (docs/deception.md): median over runs at the end of each phase, the step at which it first "
        "exceeds 0.2 (median over the runs where it does), and its distribution at the end (median, IQR, share of runs above 0.1, 0.2, 0.5)",
        [*by, "runs", "gap at phase ends", "first > 0.2 at", "final median (IQR)", "> 0.1 %", "> 0.2 %", "> 0.5 %"],
        [[*key(r), str(r["runs"]), r["phase_ends"], _num(r["first_above"]), f"{r['median']:+.2f} ({r['q25']:+.2f} to {r['q75']:+.2f})",
          *(_ci(r[f"above_{lv}"], r[f"above_{lv}_low"], r[f"above_{lv}_high"]) for lv in ("0.1", "0.2", "0.5"))] for r in gp.to_dict("records")],
        left=len(by),
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


def gap_paths(runs, by: list[str]):
    """Per condition: the gap distribution at the end, the median trajectory gap at each phase's last
    checkpoint, and the median step at which a run's gap first exceeds 0.2."""
    import numpy as np

    from ..measure.deception import gap_distribution

    dist = gap_distribution(runs, by)
    ends, firsts = [], []
    sort = ["condition_index"] if "condition_index" in runs else by
    for _, g in runs.sort_values(sort).groupby(by, sort=False, dropna=False):
        steps, phases = list(g.traj_step.iloc[0]), list(g.traj_phase.iloc[0])
        gaps = np.array([list(v) for v in g.traj_compliance_gap], float)  # (runs, T)
        last = [i for i in range(len(phases)) if i == len(phases) - 1 or phases[i + 1] != phases[i]]
        ends.append(", ".join(f"{phases[i]} {np.nanmedian(gaps[:, i]):+.2f}" for i in last))
        above = gaps > 0.2
        hit = [steps[int(np.argmax(a))] for a in above if a.any()]
        firsts.append(float(np.median(hit)) if hit else float("nan"))
    dist["phase_ends"], dist["first_above"] = ends, firsts
    return dist


# -- speed (issue 4): compute each class needs, and training under a compute penalty (C6, C7) -------


