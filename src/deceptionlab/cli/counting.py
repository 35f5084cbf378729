"""`counting`: the counting argument measured on a results folder (claim C5, docs/counting.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ._common import Format, _check_out, _fail, _table, _write_frame, app, console, err_console

SOURCES = ("naive", "prior", "nngp", "finite", "sgd")


def _cell(r) -> str:
    if r.n == 0:
        return "n/a"
    bits = "inf" if r.bits == float("inf") else f"{max(r.bits, 0.0):.1f}"  # max: no "-0.0" for p = 1
    return f"{100 * r.p:.3g}% ({100 * r.low:.3g}-{100 * r.high:.3g}) {bits} bits"


@app.command()
def counting(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run` (an MLP-family world)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for counting.parquet and the figure (default: RESULTS/counting)."),
    chains: int = typer.Option(500, min=1, help="Elliptical slice chains run at once."),
    steps: int = typer.Option(200, min=4, help="Kept steps per chain (samples = chains x steps)."),
    burn_in: int = typer.Option(300, min=0, help="Steps per chain discarded first."),
    naive_samples: int = typer.Option(20_000, min=1, help="Draws of the naive count (uniform over functions that fit)."),
    prior_samples: int = typer.Option(20_000, min=0, help="Random networks for P_prior; 0 skips it."),
    every_condition: bool = typer.Option(False, "--every-condition", help="Every condition's world and model, not only the first's."),
    seed: int = typer.Option(0, help="Seed of every sampler."),
    weight_scale: float = typer.Option(1.0, min=1e-3, max=1e3, help="Multiply the init's weight variances (ordered < 1 < chaotic); P_prior is skipped unless 1."),
    depth: Optional[int] = typer.Option(None, min=0, max=64, help="Hidden layers of the NNGP (and P_prior) instead of the results' config."),
    width: Optional[int] = typer.Option(None, min=1, help="Width instead of the config's (the NNGP sees it through the bias variance)."),
    finite_chains: int = typer.Option(0, min=0, help="Also sample the finite-width networks themselves (source 'finite'): this many chains; 0 skips it (slow: docs/counting.md)."),
    finite_steps: int = typer.Option(50, min=4, help="Kept steps per finite-width chain."),
    finite_burn_in: int = typer.Option(100, min=0, help="Exact steps per finite-width chain discarded after it first fits."),
    function_inputs: int = typer.Option(8, min=0, max=16, help="Held-out probe inputs of the function-level comparison P_B(f | S) vs P_SGD(f | S); 0 skips it."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (csv/json: the counting table, one row per condition, source and verdict)."),
):
    """P(class | S) per source: the naive count, P_prior, the NNGP posterior P_B and P_SGD, with -log2 P."""
    _check_out(out)
    from ..api import counting as measure
    from ..measure.counting.functions import correlation
    from ..measure.counting.table import Settings, write
    from ..report.counting_figures import class_probabilities, function_level
    from ..sweep import StoreError
    from ..worlds import WorldError

    if not results.is_dir():
        _fail(f"{results}: no such results folder")
    t0 = time.perf_counter()
    settings = Settings(chains, steps, burn_in, naive_samples, prior_samples, seed, every_condition, weight_scale, depth, width,
                        finite_chains, finite_steps, finite_burn_in, function_inputs)
    try:
        c = measure(results, settings, progress=lambda m: err_console.print(m, highlight=False, markup=False))
    except (StoreError, WorldError, ValueError) as e:
        _fail(str(e))
    out = out or results / "counting"
    try:
        files = [*write(c, out), *class_probabilities(c.table, out), *(function_level(c.functions, out) if not c.functions.empty else [])]
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    if _write_frame(c.table, fmt):
        err_console.print(f"{', '.join(p.name for p in files)} -> {out} ({time.perf_counter() - t0:.0f} s)")
        return
    for cond, g in c.table.groupby("condition", sort=False):
        t = g.set_index(["verdict", "source"])
        sources = [s for s in SOURCES if s in set(g.source)]
        rows = [[v, *[_cell(t.loc[(v, s)]) for s in sources]] for v in dict.fromkeys(g.verdict)]
        _table(f"P(class | S): % (95% interval) and -log2 P in bits: {cond}", ["verdict", *sources], rows, left=1)
    for d in c.diagnostics:
        console.print(f"  NNGP posterior of {d['condition']}: {d['samples']:,} samples ({d['chains']} chains x {d['steps']} steps after {d['burn_in']}), "
                      f"ESS min {d['min_ess']:,.0f}, internal {d['ess_internal']:,.0f}; drift |z| {d['drift_z']:.1f} (first vs second half); {d['proposals_per_step']:.1f} proposals per step, "
                      f"{d['stuck']} stuck; {d['seconds']:.1f} s", highlight=False, soft_wrap=True)
        if "finite_samples" in d:
            console.print(f"  finite-width posterior ({d['depth']}x{d['width']} networks): {d['finite_samples']:,} samples ({d['finite_chains']} chains x {d['finite_steps']} steps "
                          f"after {d['finite_burn_in']}; {d['finite_tempered_steps']} tempered steps to the first fit, {d['finite_dropped']} chains never fitted), "
                          f"ESS min {d['finite_min_ess']:,.0f}, internal {d['finite_ess_internal']:,.0f}; drift |z| {d['finite_drift_z']:.1f}; "
                          f"{d['finite_proposals_per_step']:.1f} proposals per step; {d['finite_seconds']:.1f} s", highlight=False, soft_wrap=True)
        console.print(f"  naive count, exactly: P(the deployment half matches any one template at the threshold) = 2^{d['naive_log2_deployment_tail']:.1f}, "
                      "the same for internal, corrigible and proxy: uniform over functions cannot tell the classes apart there", highlight=False, soft_wrap=True)
    for cond, f in c.functions.groupby("condition", sort=False):
        for source in [s for s in ("nngp", "finite") if s in set(f.source)]:
            k = correlation(f, source)
            r = "n/a (fewer than 3 shared functions)" if k["r_log10"] != k["r_log10"] else f"{k['r_log10']:+.2f}"
            console.print(f"  function level, {cond}: log10 P_B ({source}) vs log10 P_SGD over the {k['functions_both']} of {k['functions_sgd']} functions SGD produced "
                          f"on {len(f.function.iloc[0])} held-out inputs that the posterior also produced: r = {r}; SGD's mass on functions the posterior never produced "
                          f"{100 * k['sgd_mass_unseen']:.0f}%", highlight=False, soft_wrap=True)
    err_console.print(f"{', '.join(p.name for p in files)} -> {out} ({time.perf_counter() - t0:.0f} s)")
