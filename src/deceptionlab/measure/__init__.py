"""Measurements: verdicts per run, outcomes, paths and path dependence, loss barriers. They read results."""

from .barriers import barrier_summary, loss_barriers
from .outcomes import frequencies
from .path_dependence import THRESHOLDS, curves, path_dependence, sensitivity
from .paths import class_paths, gain_curves, path_events, path_summary, returns_summary
from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson

__all__ = [
    "THRESHOLDS", "VERDICTS", "ProbeEvaluator", "barrier_summary", "class_paths", "class_scores", "curves", "frequencies",
    "gain_curves", "loss_barriers", "path_dependence", "path_events", "path_summary", "returns_summary", "sensitivity", "verdicts", "wilson",
]
