"""Measurements: verdicts per run (and, later, paths, priors and speed). They read results."""

from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson

__all__ = ["VERDICTS", "ProbeEvaluator", "class_scores", "verdicts", "wilson"]
