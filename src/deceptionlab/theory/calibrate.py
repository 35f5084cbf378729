"""Parameters from measurements: the path model's rates from a lab results folder.

Mapping (one model step = one SGD step of the measured runs; the texts' "number of steps"):
  world_rate   from the median step at which the situation becomes decodable (`path_events`'
               sa_step): the rate at which the world model, followed alone, climbs from 0 to
               situational_threshold in that many steps, rate = ∫ ds / (1 - s)**world_curvature / steps;
  proxy_rate   from the median step at which the base objective generalises (objective_step: the
               internal or corrigible template at threshold on deployment probes): the rate at which
               the proxy climbs from initial_proxy to 1 - proxy_tolerance in that many steps;
  derail_rate  from the leading-class changes per SGD step (path_events' derailments over the steps
               trained).
Medians are over the runs that reached the event. A followed-alone time is shorter than the time in
the simulation, where directions compete for steps: the fitted rates make simulated events later than
measured ones. Curvatures, thresholds and the rest keep their values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._fields import checked
from .path_model import PathParams, _integral


def params_from_runs(runs: pd.DataFrame, base: PathParams = PathParams(), situation: str | None = None) -> tuple[PathParams, dict[str, str]]:
    """Path-model parameters set from a frame of runs (one row per run, trajectory columns), and per parameter where it came from.
    `situation`: the decodable that means "knows its situation" (default: as `deceptionlab paths`)."""
    from ..measure.paths import default_situation, path_events

    situation = situation or default_situation(runs)

    sources: dict[str, str] = {}
    changes: dict[str, float] = {}
    if f"traj_decode_{situation}" not in runs:
        situation = next((c.removeprefix("traj_decode_") for c in runs.columns if c.startswith("traj_decode_situation")), situation)
    has_sa = f"traj_decode_{situation}" in runs
    ev = path_events(runs, situation=situation)
    n = len(ev)

    sa = ev.sa_step.dropna()
    if not has_sa:
        sources["world_rate"] = "default: the results have no situation decodable (traj_decode_situation*)"
    elif not len(sa) or sa.median() <= 0:
        sources["world_rate"] = f"default: no run's situation became decodable ({n} runs)"
    else:
        changes["world_rate"] = min(1.0, _integral(0, base.situational_threshold, base.world_curvature) / sa.median())
        sources["world_rate"] = f"results: median step situation decodable ({situation}) = {sa.median():g} ({len(sa)}/{n} runs)"

    obj = ev.objective_step.dropna()
    if not len(obj) or obj.median() <= 0:
        sources["proxy_rate"] = f"default: no run's base objective generalised ({n} runs)"
    else:
        need = _integral(base.initial_proxy, 1 - base.proxy_tolerance, base.proxy_curvature)
        changes["proxy_rate"] = min(1.0, need / obj.median())
        sources["proxy_rate"] = f"results: median step base objective generalises = {obj.median():g} ({len(obj)}/{n} runs)"

    trained = float(np.sum([np.max(s) for s in runs.traj_step])) if n else 0.0
    if trained > 0:
        changes["derail_rate"] = min(1.0, float(ev.derailments.sum()) / trained)
        sources["derail_rate"] = f"results: {int(ev.derailments.sum())} leading-class changes in {trained:g} steps ({n} runs)"
    else:
        sources["derail_rate"] = "default: no trained steps in the results"
    return checked(base, **changes), sources
