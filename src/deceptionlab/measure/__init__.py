"""Measurements: verdicts per run (and, later, paths, priors and speed). They read results."""

from .outcomes import frequencies
from .paths import path_events, path_summary
from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson

__all__ = ["VERDICTS", "frequencies", "path_events", "path_summary", "ProbeEvaluator", "class_scores", "verdicts", "wilson"]
