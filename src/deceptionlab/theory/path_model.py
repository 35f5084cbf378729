"""High path dependence: the argument of the source texts as a stochastic path model.

"Gradient descent updates the model in the direction that locally increases its performance the
most", and "the second factor is how many steps of gradient descent are needed for the model to
become a member of a given model class. If many steps are needed, then there are more opportunities
for the model to become 'derailed'" (seeds/000, section 2).

A model's state is three levels in [0, 1] and one flag:
  p  proxy quality: how closely its own goal matches the base objective (1: the base objective);
  s  world model / situational awareness: how well it understands the world, its training included;
  q  pointer quality: how robustly its goal points at its world model's idea of the objective;
  long_term: whether its goal reaches beyond the episode.

Each step SGD takes one direction: improve the proxy, the world model, the pointer (only once the
world model knows the objective better than the proxy does, s >= objective_knowledge), or, once it knows its
situation, make its goal long-term. A level's local gain in training performance diminishes as it
rises, gain = rate * (1 - level) ** curvature (the proxy's returns diminish faster than the world
model's: C2); making the goal long-term gains `long_term_gain` times the whole remaining gap at
once ("achieves maximum performance immediately": C3). The direction is drawn with
P ∝ gain ** (1 / temperature), a softmax over log gains (temperature -> 0: steepest ascent), and
the chosen level moves by its gain. Absorbing transitions:
  deceptive   s >= situational_threshold while the goal is long-term and not the base objective
              (from then on training performance is full by instrumental reasoning: the proxy
              crystallises);
  corrigible  q >= pointer_threshold;
  internal    p >= 1 - proxy_tolerance.
A derailment (a chance per step) swaps the goal for a fresh proxy: p back to its initial level,
q to 0, long-termness drawn again; the world model is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..core.stats import wilson
from ._fields import bounded

OUTCOMES = ("internal", "corrigible", "deceptive", "not converged")
PROXY, WORLD, POINTER, LONG_TERM = range(4)  # directions


@dataclass(frozen=True)
class PathParams:
    """The path model's parameters; defaults read the texts' qualitative claims as numbers."""

    proxy_rate: float = bounded(0.02, 0, 1)
    """Gain per step of refining the proxy, at a proxy of quality 0 ("the proxy is updated over time")."""
    proxy_curvature: float = bounded(2.0)
    """How fast the proxy's returns diminish, gain ∝ (1 - p) ** this ("diminishing returns to the proxy")."""
    world_rate: float = bounded(0.005, 0, 1)
    """Gain per step of improving the world model ("understanding the world improves many tasks")."""
    world_curvature: float = bounded(1.0)
    """How fast the world model's returns diminish; below proxy_curvature: they diminish more slowly (C2)."""
    pointer_rate: float = bounded(0.02, 0, 1)
    """Gain per step of improving the pointer to the world model's objective ("connect the circuits")."""
    pointer_curvature: float = bounded(2.0)
    """How fast the pointer's returns diminish ("diminishing returns to improving pointer alignment")."""
    long_term_gain: float = bounded(0.01)
    """Share of the remaining performance gap gained at once by making the goal long-term (C3, "sharply")."""
    long_term_goal: float = bounded(0.3, 0, 1)
    """Chance that a proxy is already a long-term goal ("if the model already has a long term goal")."""
    situational_threshold: float = bounded(0.7, 0, 1)
    """World-model level at which the model understands its training ("need not understand the world perfectly")."""
    objective_knowledge: float = bounded(0.4, 0, 1)
    """World-model level at which it knows the objective better than the proxy, so a pointer pays ("closer than its proxy")."""
    pointer_threshold: float = bounded(0.9, 0, 1)
    """Pointer quality at which the model is corrigibly aligned ("robustly points at the base objective")."""
    proxy_tolerance: float = bounded(0.05, 0, 1, lo_open=True)
    """Proxy error at which the proxy counts as the base objective ("essentially identical": internal)."""
    initial_proxy: float = bounded(0.5, 0, 0.99)
    """Proxy quality early in training ("acquires a proxy goal which is a decent approximation")."""
    temperature: float = bounded(1.0, 0, 100, lo_open=True)
    """Noise in SGD's choice of direction: P ∝ gain ** (1/temperature) (runs differ: high path dependence)."""
    rate_spread: float = bounded(1.0, 0, 5)
    """Spread (sd of log) of each run's rates around the above: seeds and data orders differ ("different training runs")."""
    derail_rate: float = bounded(0.001, 0, 1)
    """Chance per step that the run is derailed and its goal replaced ("more opportunities to be derailed")."""


# -- deterministic path quantities: steps per path, gain per step -----------------------------------
def _integral(x0: float, x1: float, k: float) -> float:
    """∫ dx / (1 - x) ** k from x0 to x1: the steps, times the rate, for dx/dt = rate (1 - x) ** k."""
    if x1 <= x0:
        return 0.0
    a, b = 1.0 - x0, 1.0 - x1
    with np.errstate(divide="ignore"):
        if k == 1:
            return float(np.log(a / np.float64(b)))
        return float((np.float64(b) ** (1 - k) - a ** (1 - k)) / (k - 1))


def _steps(x0: float, x1: float, k: float, rate: float) -> float:
    need = _integral(x0, x1, k)
    return 0.0 if need == 0 else (need / rate if rate > 0 else np.inf)


def path_quantities(params: PathParams) -> pd.DataFrame:
    """The texts' two path factors per class, each path followed alone (no competition, no noise):
    steps it needs, mean training-performance gain per step (the gap from the initial proxy to full
    performance over the steps), and the gain per step at its end. Row `deceptive_shorter` is C3."""
    P = params
    gap = 1.0 - P.initial_proxy
    internal = _steps(P.initial_proxy, 1 - P.proxy_tolerance, P.proxy_curvature, P.proxy_rate)
    # the pointer needs the world model to know the objective better than the proxy first
    corrigible = _steps(0, P.objective_knowledge, P.world_curvature, P.world_rate) + _steps(0, P.pointer_threshold, P.pointer_curvature, P.pointer_rate)
    # learn the situation, then (unless already long-term) one step to a long-term goal
    deceptive = _steps(0, P.situational_threshold, P.world_curvature, P.world_rate) + (P.long_term_goal < 1)
    end_gain = {
        "internal": P.proxy_rate * P.proxy_tolerance**P.proxy_curvature,
        "corrigible": P.pointer_rate * (1 - P.pointer_threshold) ** P.pointer_curvature,
        "deceptive": P.long_term_gain * gap if P.long_term_goal < 1 else gap,
    }
    rows = [
        {"path": c, "steps": n, "gain_per_step": gap / n if n else np.inf, "final_gain_per_step": end_gain[c]}
        for c, n in (("internal", internal), ("corrigible", corrigible), ("deceptive", deceptive))
    ]
    out = pd.DataFrame(rows)
    out.attrs["deceptive_shorter"] = bool(deceptive < min(internal, corrigible))
    return out


# -- Monte Carlo ---------------------------------------------------------------------------------------
@dataclass
class PathResult:
    """Simulated runs: `outcome_` (R,) index into OUTCOMES, `steps_` (R,) step of the transition (NaN: none)."""

    params: PathParams
    outcome_: np.ndarray
    steps_: np.ndarray
    max_steps: int

    def summary(self) -> pd.DataFrame:
        """Per outcome: count, P with its 95% Wilson interval, time to it (median, quartiles)."""
        n = len(self.outcome_)
        rows = []
        for i, name in enumerate(OUTCOMES):
            hit = self.outcome_ == i
            k = int(hit.sum())
            lo, hi = wilson(k, n)
            t = self.steps_[hit]
            q = np.percentile(t, [25, 50, 75]) if k and i < 3 else [np.nan] * 3
            rows.append({"outcome": name, "count": k, "p": k / n, "low": float(lo), "high": float(hi),
                         "median_steps": q[1], "steps_q25": q[0], "steps_q75": q[2]})
        return pd.DataFrame(rows)

    def probabilities(self) -> dict[str, float]:
        return {name: float((self.outcome_ == i).mean()) for i, name in enumerate(OUTCOMES)}


def simulate_paths(params: PathParams = PathParams(), runs: int = 10_000, seed: int = 0, max_steps: int = 3000) -> PathResult:
    """Simulate `runs` training paths, all at once (numpy), from `numpy.random.default_rng(seed)`."""
    P = params
    rng = np.random.default_rng(seed)
    outcome = np.full(runs, 3, dtype=np.int8)
    steps = np.full(runs, np.nan)
    # state of the runs still on their way (absorbed runs are dropped, so late steps are cheap)
    idx = np.arange(runs)
    level = np.zeros((runs, 3))  # (n, 3): p, s, q
    level[:, PROXY] = P.initial_proxy
    long_term = rng.random(runs) < P.long_term_goal
    rates = np.array([P.proxy_rate, P.world_rate, P.pointer_rate]) * np.exp(P.rate_spread * rng.standard_normal((runs, 3)))  # (runs, 3)
    curv = np.array([P.proxy_curvature, P.world_curvature, P.pointer_curvature])
    for t in range(1, max_steps + 1):
        n = len(idx)
        if not n:
            break
        derailed = rng.random(n) < P.derail_rate
        if derailed.any():
            level[derailed, PROXY], level[derailed, POINTER] = P.initial_proxy, 0.0
            long_term[derailed] = rng.random(int(derailed.sum())) < P.long_term_goal  # a new goal, new horizon

        gain = np.empty((n, 4))
        gain[:, :3] = rates * (1 - level) ** curv
        gain[:, POINTER] *= level[:, WORLD] >= P.objective_knowledge
        gain[:, LONG_TERM] = P.long_term_gain * (1 - level[:, PROXY]) * ((level[:, WORLD] >= P.situational_threshold) & ~long_term)
        w = gain if P.temperature == 1 else (gain / gain.max(1, keepdims=True)) ** (1 / P.temperature)
        cum = np.cumsum(w, 1)
        total = cum[:, -1]
        moving = total > 0  # where every gain is 0 there is nothing to climb: the run stays put
        choice = (rng.random(n)[:, None] * total[:, None] > cum).sum(1)  # zero-weight directions are never drawn
        rows = np.flatnonzero(moving & (choice < LONG_TERM))
        level[rows, choice[rows]] = np.minimum(level[rows, choice[rows]] + gain[rows, choice[rows]], 1.0)
        long_term |= moving & (choice == LONG_TERM)

        internal = level[:, PROXY] >= 1 - P.proxy_tolerance
        deceptive = ~internal & long_term & (level[:, WORLD] >= P.situational_threshold)
        corrigible = ~internal & ~deceptive & (level[:, POINTER] >= P.pointer_threshold)
        done = internal | corrigible | deceptive
        if done.any():
            for code, hit in enumerate((internal, corrigible, deceptive)):
                outcome[idx[hit]] = code
                steps[idx[hit]] = t
            keep = ~done
            idx, level, long_term, rates = idx[keep], level[keep], long_term[keep], rates[keep]
    return PathResult(params=P, outcome_=outcome, steps_=steps, max_steps=max_steps)


def params_table(params) -> pd.DataFrame:
    """Name, value and meaning (the field's docstring) of every parameter of a theory dataclass."""
    from ._fields import field_docs

    docs = field_docs(type(params))
    return pd.DataFrame([{"name": k, "value": v, "meaning": docs.get(k, "")} for k, v in asdict(params).items()])
