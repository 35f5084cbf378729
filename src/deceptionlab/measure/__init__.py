"""Measurements: verdicts per run, paths and speed (compute per class, compute penalties). They read results."""

from .outcomes import frequencies
from .paths import path_events, path_summary
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
from .verdicts import VERDICTS, ProbeEvaluator, class_scores, verdicts, wilson

__all__ = [
    "VERDICTS", "frequencies", "path_events", "path_summary", "ProbeEvaluator", "class_scores", "verdicts", "wilson",
    "ImitationConfig", "PonderConfig", "SpeedResults", "compute_per_class", "forward_flops", "imitation_grid",
    "measure_speed", "plot_speed", "ponder_summary", "ponder_sweep",
]


def __getattr__(name: str):
    # matplotlib takes a while to import; only `plot_speed` needs it, so it loads on first use
    if name == "plot_speed":
        from .speed_plots import plot_speed

        return plot_speed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
