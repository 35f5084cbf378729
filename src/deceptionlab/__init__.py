"""deceptionlab: does SGD produce deceptively aligned models? Experiments instead of intuitions.

Public API (the CLI calls the same functions):
    load_spec(path) -> ExperimentSpec         read and validate a TOML spec
    run(spec_or_path, out) -> DataFrame       train the runs not yet stored, return all runs
    load(results_dir) -> DataFrame            one row per run (pandas), every chunk verified first; `Store(dir).query(sql)`
                                              for DuckDB; `Store(dir).check()` lists problems (docs/results-format.md)
    frequencies(df) -> DataFrame              P_SGD(verdict) per condition with 95% Wilson intervals
    analyse_paths(results_dir) -> dict        path events, gains, path dependence, barriers (+ CSV, figures)
    interventions(results_dir) -> DataFrame   each intervention's effect on P(deceptive), P(aligned) and its cost
    sample_functions(x, widths, samples) -> DataFrame   P_prior(f) of random MLPs on inputs x, with LZ complexity
    class_prior(world, samples) -> (DataFrame, dict)    P_prior(class) and P_prior(class | fit) by rejection
    lz_complexity(bits) -> float              Lempel-Ziv complexity of a truth table (Dingle et al.)
    detect(dirs, detectors, out) -> dict      detectors on benchmark sets of deceptive vs aligned runs (docs/detection.md)
    counting(results_dir) -> Counting         naive count, P_prior, P_B(class | S) (NNGP posterior), P_SGD side by side
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .measure import (
    VERDICTS, InterventionsError, ProbeEvaluator, boolean_inputs, class_prior, class_scores, compare_with_sgd, frequencies,
    intervention_effects, interventions, lz_complexity, sample_functions, verdicts, wilson,
)
from .measure.counting.table import Counting, Settings as CountingSettings, counting
from .report.paths import analyse_paths
from .sweep import ExperimentSpec, SpecError, Store, StoreError, load, load_spec, parse_spec, run_experiment
from .worlds import CLASSES, REGISTRY, World, get_world

__version__ = "0.1.0"


def run(spec: ExperimentSpec | str | Path, out: str | Path, **kwargs) -> pd.DataFrame:
    """Run an experiment (a spec object or a TOML path) into `out` and return all its stored runs."""
    if not isinstance(spec, ExperimentSpec):
        spec = load_spec(spec)
    run_experiment(spec, out, **kwargs)
    return load(out)


def detect(folders, detectors: list[str] | None = None, out: str | Path | None = None, **kwargs) -> dict:
    """Benchmark sets of `folders` (saved weights needed), every detector's scores and AUROC table, written
    to `out` (default FOLDER/detection): {"table", "scores", "sets", "files"} (docs/detection.md)."""
    from .detect.run import detect as _detect  # late: the detectors need measure and models

    return _detect(folders, detectors, out, **kwargs)


__all__ = [
    "CLASSES", "REGISTRY", "analyse_paths", "VERDICTS", "ExperimentSpec", "ProbeEvaluator", "SpecError", "Store", "StoreError", "World",
    "class_scores", "frequencies", "get_world", "load", "load_spec", "parse_spec", "run", "verdicts", "wilson",
    "boolean_inputs", "class_prior", "compare_with_sgd", "lz_complexity", "sample_functions",
    "InterventionsError", "intervention_effects", "interventions", "detect",
    "Counting", "CountingSettings", "counting",
]
