"""Everything the theory predicts for one setting, as tables: what `deceptionlab theory` prints."""

from __future__ import annotations

import dataclasses

import pandas as pd

from ._fields import checked, field_docs
from .biases import CLASSES3, BiasParams, bias_predictions
from .path_model import PathParams, path_quantities, simulate_paths
from .sensitivity import reversals, sensitivity


def apply_assignments(path: PathParams, bias: BiasParams, assignments: list[str], sources: dict[str, str]) -> tuple[PathParams, BiasParams]:
    """Apply NAME=VALUE strings to whichever model has NAME; `sources[NAME]` becomes "--param".
    Raises ValueError with a one-line message on a malformed pair, an unknown name or a bad value."""
    path_names = {f.name for f in dataclasses.fields(PathParams)}
    bias_names = {f.name for f in dataclasses.fields(BiasParams)}
    for a in assignments:
        name, sep, raw = a.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--param {a!r}: expected NAME=VALUE")
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"--param {name}: {raw!r} is not a number") from None
        if name in path_names:
            path = checked(path, **{name: value})
        elif name in bias_names:
            bias = checked(bias, **{name: value})
        else:
            raise ValueError(f"--param {name}: unknown parameter (known: {', '.join(sorted(path_names | bias_names))})")
        sources[name] = "--param"
    return path, bias


def parameters(path: PathParams, bias: BiasParams, sources: dict[str, str]) -> pd.DataFrame:
    """Model, name, value, source (default, --param, results: ..., prior: ...) and meaning of every parameter."""
    rows = []
    for model, params in (("high path dependence", path), ("low path dependence", bias)):
        docs = field_docs(type(params))
        for k, v in dataclasses.asdict(params).items():
            rows.append({"model": model, "name": k, "value": v, "source": sources.get(k, "default"), "meaning": docs.get(k, "")})
    return pd.DataFrame(rows)


def predict(
    path: PathParams = PathParams(), bias: BiasParams = BiasParams(), runs: int = 10_000, seed: int = 0,
    sensitivity_runs: int = 1000, max_steps: int = 3000, sources: dict[str, str] | None = None, analyse: bool = True,
) -> dict[str, pd.DataFrame]:
    """Tables: high_path_dependence (P per outcome, Wilson intervals, time to it), path_quantities (the
    two path factors; attrs["deceptive_shorter"]), low_path_dependence, parameters, sensitivity (both
    models, ±25%; the path model with `sensitivity_runs` runs under the same seed), reversals (the
    smallest single-parameter change after which the most likely outcome is another). `analyse=False` leaves
    out the last two (hundreds of path simulations), for callers that show only the predictions."""
    sim = lambda p: simulate_paths(p, runs=sensitivity_runs, seed=seed, max_steps=max_steps).probabilities()  # noqa: E731
    low = lambda b: dict(zip(CLASSES3, bias_predictions(b).p))  # noqa: E731
    tables = {}
    if analyse:
        tables["sensitivity"] = pd.concat(
            [sensitivity(path, sim).assign(model="high path dependence"), sensitivity(bias, low).assign(model="low path dependence")],
            ignore_index=True,
        )
        tables["reversals"] = pd.concat(
            [reversals(path, sim).assign(model="high path dependence"), reversals(bias, low).assign(model="low path dependence")],
            ignore_index=True,
        )
    return {
        **tables,
        "high_path_dependence": simulate_paths(path, runs=runs, seed=seed, max_steps=max_steps).summary(),
        "path_quantities": path_quantities(path),
        "low_path_dependence": bias_predictions(bias),
        "parameters": parameters(path, bias, sources or {}),
    }
