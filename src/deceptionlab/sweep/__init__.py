"""Sweeps: specs, run ids, executing chunks (locally or on Ray) and the results store."""

from .executors import ExecutorError, Local, Progress, RayCluster
from .experiment import run_experiment, train_chunk
from .spec import ExperimentSpec, RunConfig, SpecError, conditions, expand, load_spec, parse_spec
from .store import Store, StoreError, load

__all__ = [
    "ExecutorError", "ExperimentSpec", "Local", "Progress", "RayCluster", "RunConfig", "SpecError", "Store", "StoreError",
    "conditions", "expand", "load", "load_spec", "parse_spec", "run_experiment", "train_chunk",
]
