"""Sweeps: specs, run ids, the executor and the results store."""

from .executor import Progress, run_experiment, train_chunk
from .spec import ExperimentSpec, RunConfig, SpecError, conditions, expand, load_spec, parse_spec
from .store import Store, StoreError, load

__all__ = [
    "ExperimentSpec", "Progress", "RunConfig", "SpecError", "Store", "StoreError",
    "conditions", "expand", "load", "load_spec", "parse_spec", "run_experiment", "train_chunk",
]
