"""Measurements: verdicts per run, outcomes, paths and path dependence, loss barriers, and speed
(compute per class, compute penalties). They read results."""

from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson  # noqa: I001  (first: the others build on it)
from .barriers import barrier_summary, loss_barriers
from .outcomes import frequencies
from .path_dependence import THRESHOLDS, curves, path_dependence, sensitivity
from .paths import class_paths, gain_curves, path_events, path_summary, returns_summary
from .speed import (
    ImitationConfig,
    PonderConfig,
    SpeedResults,
    compute_per_class,
    forward_flops,
    imitation_grid,
    measure_speed,
    ponder_summary,
    ponder_sweep,
)

__all__ = [
    "THRESHOLDS", "VERDICTS", "ProbeEvaluator", "barrier_summary", "class_paths", "class_scores", "curves", "frequencies",
    "gain_curves", "loss_barriers", "path_dependence", "path_events", "path_summary", "returns_summary", "sensitivity", "verdicts", "wilson",
    "ImitationConfig", "PonderConfig", "SpeedResults", "compute_per_class", "forward_flops", "imitation_grid",
    "measure_speed", "plot_speed", "ponder_summary", "ponder_sweep",
]


def __getattr__(name: str):
    # matplotlib takes a while to import; only `plot_speed` needs it, so it loads on first use
    if name == "plot_speed":
        from .speed_plots import plot_speed

        return plot_speed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
