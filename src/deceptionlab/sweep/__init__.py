"""Sweeps: specs, run ids, executing chunks (locally or on Ray) and the results store."""

from .executors import ExecutorError, Local, Progress, RayCluster
from .experiment import run_experiment, train_chunk
from .kinds import SPEC_KINDS, expand, load_spec, parse_spec
from .measurements import ImitationSpec, PriorSpec
from .spec import ExperimentSpec, RunConfig, SpecError, conditions
from .store import Store, StoreError, load

__all__ = [
    "SPEC_KINDS", "ExecutorError", "ExperimentSpec", "ImitationSpec", "PriorSpec", "Local", "Progress", "RayCluster", "RunConfig", "SpecError", "Store", "StoreError",
    "conditions", "expand", "load", "load_spec", "parse_spec", "run_experiment", "train_chunk",
]
