"""Measurements: verdicts per run, paths, prior volume (and, later, speed). They read results."""

from .complexity import lz76, lz_complexity
from .outcomes import frequencies
from .paths import path_events, path_summary
from .prior import Init, boolean_inputs, complexity_correlation, sample_functions
from .prior_sgd import compare_functions, prior_given_subset, sgd_functions
from .prior_volume import class_prior, compare_with_sgd
from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson

__all__ = [
    "VERDICTS",
    "Init",
    "ProbeEvaluator",
    "boolean_inputs",
    "class_prior",
    "class_scores",
    "compare_functions",
    "compare_with_sgd",
    "complexity_correlation",
    "frequencies",
    "lz76",
    "lz_complexity",
    "path_events",
    "path_summary",
    "prior_given_subset",
    "sample_functions",
    "sgd_functions",
    "verdicts",
    "wilson",
]
