"""Measurements: verdicts per run (and, later, paths, priors and speed). They read results."""

from .outcomes import frequencies
from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson

__all__ = ["VERDICTS", "frequencies", "ProbeEvaluator", "class_scores", "verdicts", "wilson"]
