"""The argument of the source texts as a quantitative model, whose predictions the report sets
beside the measurements: a stochastic path model for high path dependence (`paths`), description
length and compute scores for low path dependence (`biases`), the sensitivity of every prediction
to every parameter (`sensitivity`), and parameters set from measurements (`calibrate`)."""

from ._fields import checked, field_docs
from .biases import (
    CLASSES3,
    COUNTING_SOURCES,
    BiasParams,
    bias_params_from_counting,
    bias_params_from_prior,
    bias_predictions,
    compute_steps,
    description_lengths,
)
from .calibrate import params_from_runs
from .fit import FitError, TheoryFit, fit_theory
from .lab_units import FREE, measure_conditions, predictions, simulate_verdicts
from .path_model import OUTCOMES, PathParams, PathResult, params_table, path_quantities, simulate_paths
from .predict import apply_assignments, parameters, predict
from .sensitivity import reversals, sensitivity

PathModel = PathParams  # the model is its parameters plus `simulate_paths`; the name the issue uses

__all__ = [
    "FREE", "FitError", "TheoryFit", "fit_theory", "measure_conditions", "predictions", "simulate_verdicts",
    "CLASSES3", "COUNTING_SOURCES", "OUTCOMES", "BiasParams", "bias_params_from_counting", "PathModel", "PathParams", "PathResult", "apply_assignments", "bias_params_from_prior",
    "bias_predictions", "checked", "compute_steps", "description_lengths", "field_docs", "params_from_runs", "params_table",
    "parameters", "path_quantities", "predict", "reversals", "sensitivity", "simulate_paths",
]
