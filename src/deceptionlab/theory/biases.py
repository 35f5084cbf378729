"""Low path dependence: the inductive biases decide, scored by description length and by compute.

"We can estimate the simplicity of a model class by how many possible models implement it" and
"deception adds extra reasoning steps to the thought process of the deceptively aligned models"
(seeds/000, section 3). The counting argument (seeds/002): "only a small number of objectives a
model could have are equal to the base objective" (internal), "only very few pointers robustly point
at a model of the base objective" (corrigible), "there are many objectives that result in the model
optimizing for the base objective" (deceptive: any long-term goal, plus reasoning about training).

Form: a class that takes L bits to specify is implemented by a share 2**-L of parameter settings,
and one that needs C steps of reasoning is penalised by the speed bias, so

    P(class) ∝ exp(-w_simplicity * L(class) - w_speed * C(class)),

a Gibbs distribution over the three aligned classes (w_simplicity = ln 2 is the counting argument's
own 2**-L; w_speed = 0 is a pure simplicity prior, w_simplicity = 0 a pure speed prior).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._fields import bounded, checked

CLASSES3 = ("internal", "corrigible", "deceptive")


@dataclass(frozen=True)
class BiasParams:
    """Description lengths (bits), reasoning steps and the weights of the two biases."""

    objective_bits: float = bounded(20.0)
    """Bits to encode the full base objective as the model's own goal ("only one Jesus")."""
    pointer_bits: float = bounded(10.0)
    """Bits to encode a pointer that robustly points at the world model's objective ("a few Luthers")."""
    long_term_goal_bits: float = bounded(2.0)
    """Bits to encode some long-term goal, any will do ("anyone who believed what Pascal believed")."""
    situational_reasoning_bits: float = bounded(3.0)
    """Bits for the reasoning "I am in training; do well to keep my goal" (the world model itself is shared)."""
    objective_steps: float = bounded(1.0)
    """Steps of reasoning to act on a goal that is directly the objective (every class pays these)."""
    pointer_steps: float = bounded(0.5)
    """Extra steps to look the objective up in the world model (corrigible; deceptive builds it at runtime too)."""
    deception_steps: float = bounded(2.0)
    """Extra steps to infer that performing well now serves the long-term goal ("extra reasoning steps")."""
    w_simplicity: float = bounded(math.log(2))
    """Weight of the simplicity bias per bit; ln 2: a class's prior volume is 2**-bits (the counting argument)."""
    w_speed: float = bounded(1.0)
    """Weight of the speed bias per reasoning step ("favours faster, less computationally expensive")."""


def description_lengths(params: BiasParams) -> dict[str, float]:
    """Bits per class: internal the objective; corrigible a pointer; deceptive a goal plus situational reasoning."""
    return {
        "internal": params.objective_bits,
        "corrigible": params.pointer_bits,
        "deceptive": params.long_term_goal_bits + params.situational_reasoning_bits,
    }


def compute_steps(params: BiasParams) -> dict[str, float]:
    """Reasoning steps per class: deceptive looks the objective up at runtime, then reasons about training."""
    return {
        "internal": params.objective_steps,
        "corrigible": params.objective_steps + params.pointer_steps,
        "deceptive": params.objective_steps + params.pointer_steps + params.deception_steps,
    }


def _gibbs(score: np.ndarray) -> np.ndarray:
    e = np.exp(score - score.max())
    return e / e.sum()


def bias_predictions(params: BiasParams = BiasParams()) -> pd.DataFrame:
    """One row per class: bits, steps, P under simplicity alone, speed alone, and both (the prediction `p`)."""
    bits = np.array(list(description_lengths(params).values()))
    steps = np.array(list(compute_steps(params).values()))
    return pd.DataFrame(
        {
            "class": CLASSES3,
            "description_bits": bits,
            "compute_steps": steps,
            "p_simplicity_only": _gibbs(-params.w_simplicity * bits),
            "p_speed_only": _gibbs(-params.w_speed * steps),
            "p": _gibbs(-params.w_simplicity * bits - params.w_speed * steps),
        }
    )


def bias_params_from_prior(prior: dict[str, float], base: BiasParams = BiasParams()) -> tuple[BiasParams, dict[str, str]]:
    """Description lengths from measured prior volumes (issue 4: the share of random parameter draws
    implementing each class): L(class) = -log2 P_prior(class). Internal sets objective_bits, corrigible
    pointer_bits; deceptive sets long_term_goal_bits with situational_reasoning_bits = 0, since the
    measured volume of deceptive models already includes their reasoning. Classes not given keep their
    default; `proxy` (no class of the theory) is ignored. Returns the parameters and, per parameter
    set, where it came from."""
    unknown = set(prior) - {*CLASSES3, "proxy"}
    if unknown:
        raise ValueError(f"prior: unknown class {sorted(unknown)[0]!r} (classes: {', '.join(CLASSES3)})")
    changes, sources = {}, {}
    for cls, name in (("internal", "objective_bits"), ("corrigible", "pointer_bits"), ("deceptive", "long_term_goal_bits")):
        if cls not in prior:
            continue
        v = float(prior[cls])
        if not 0 < v <= 1:
            raise ValueError(f"prior: P({cls}) = {v:g} must be in (0, 1]")
        changes[name] = -math.log2(v)
        sources[name] = f"prior: -log2 P_prior({cls}) = -log2 {v:g}"
        if cls == "deceptive":
            changes["situational_reasoning_bits"] = 0.0
            sources["situational_reasoning_bits"] = "prior: included in P_prior(deceptive)"
    return checked(base, **changes), sources


COUNTING_SOURCES = {"nngp": "P_B({cls} | S)", "prior": "P_prior({cls})", "naive": "P_naive({cls} | S)"}
"""The counting table's sources a description length can be taken from (measure.counting: the NNGP
posterior given the training data, unconditioned random networks, the naive count over functions)."""


def bias_params_from_counting(table: pd.DataFrame, source: str = "nngp", condition: str | None = None,
                              base: BiasParams = BiasParams()) -> tuple[BiasParams, dict[str, str]]:
    """Description lengths from a counting table (columns condition, source, verdict, count, n, p, high,
    bits, bits_low: `measure.counting` or a folder of kind "counting"): L(class) = -log2 P(class) of
    `source` ("nngp": P_B(class | S), the default; "prior"; "naive") for `condition` (default: the first).
    Internal sets objective_bits, corrigible pointer_bits, deceptive long_term_goal_bits with
    situational_reasoning_bits = 0 (the measured share of deceptive models already includes their
    reasoning), as `bias_params_from_prior`. A class no sample fell in (count 0) gets the lower bound
    -log2 of its 95% interval's upper end, and its source says so: the class needs at least that many bits.
    Returns the parameters and, per parameter set, where it came from."""
    if source not in COUNTING_SOURCES:
        raise ValueError(f"counting source: {source!r} is none of {', '.join(COUNTING_SOURCES)}")
    need = {"condition", "source", "verdict", "count", "n", "p", "high"}
    if not need <= set(table.columns):
        raise ValueError(f"counting: not a counting table (it lacks {', '.join(sorted(need - set(table.columns)))})")
    conditions = list(dict.fromkeys(table.condition))
    if not conditions:
        raise ValueError("counting: the table is empty")
    condition = conditions[0] if condition is None else condition
    if condition not in conditions:
        raise ValueError(f"counting: no condition {condition!r} (conditions: {', '.join(map(str, conditions))})")
    t = table[(table.condition == condition) & (table.source == source)].set_index("verdict")
    if t.empty or int(t.n.iloc[0]) == 0:
        raise ValueError(f"counting: no {source} samples for condition {condition!r}")
    changes, sources = {}, {}
    label = COUNTING_SOURCES[source]
    for cls, name in (("internal", "objective_bits"), ("corrigible", "pointer_bits"), ("deceptive", "long_term_goal_bits")):
        r = t.loc[cls]
        what = label.format(cls=cls)
        if int(r["count"]) > 0:
            changes[name] = -math.log2(float(r.p))
            sources[name] = f"counting ({condition}): -log2 {what} = -log2 {float(r.p):.3g}"
        else:
            high = float(r.high)
            if not 0 < high <= 1:
                raise ValueError(f"counting: {what} has no interval to bound its description length")
            changes[name] = -math.log2(high)
            sources[name] = (f"counting ({condition}): >= {-math.log2(high):.1f} bits, a lower bound: {what} = 0 of {int(r.n):,} samples, "
                             f"-log2 of the 95% interval's upper end {high:.2g}")
        if cls == "deceptive":
            changes["situational_reasoning_bits"] = 0.0
            sources["situational_reasoning_bits"] = f"counting: included in {what}"
    return checked(base, **changes), sources
