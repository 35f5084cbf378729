"""The results schema: every column a results folder stores, its type and its meaning, and the keys of a
training trajectory. The writer (`sweep.experiment.rows_table`) is checked against it by the tests, the
loader (`deceptionlab.load`) documents its columns from it, and docs/results.md lists it (a test keeps the
page and this module equal).

A name may hold a placeholder: `{axis}` (one column per sweep axis, named after it), `{class}` (internal,
corrigible, deceptive, proxy), `{half_class}` (internal, corrigible, proxy), `{half}` (training,
deployment), `{decodable}` (the world's decodables, e.g. situation), `{head}` (the world's heads).
Types: `str`, `int`, `float`, `bool`, `bytes`, and `list[T]` for one value per trajectory checkpoint (or per
cue distance, per cell); `json` is a JSON string; `records` a list of dicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDERS: dict[str, str] = {
    "class": "internal|corrigible|deceptive|proxy",
    "half_class": "internal|corrigible|proxy",
    "half": "training|deployment",
    "axis": "[A-Za-z_][A-Za-z0-9_]*",
    "decodable": "[A-Za-z_][A-Za-z0-9_]*",
    "head": "[A-Za-z_][A-Za-z0-9_]*",
    "verdict": "internal|corrigible|deceptive|proxy|mixed|unfit",
}
"""What each placeholder of a column name stands for (a regular expression)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    meaning: str
    group: str  # identity, verdicts, scores, deception, controls, trajectory, decisions, family

    def pattern(self) -> re.Pattern:
        """The stored names this entry covers: each placeholder stands for its values (PLACEHOLDERS)."""
        parts = re.split(r"(\{[a-z_]+\})", self.name)
        return re.compile("^" + "".join(f"(?:{PLACEHOLDERS[p[1:-1]]})" if p.startswith("{") else re.escape(p) for p in parts) + "$")


_C = Column
COLUMNS: tuple[Column, ...] = (
    # -- which run ----------------------------------------------------------------------------------
    _C("run_id", "str", "The run's identity: a hash of its normalised config and seeds (docs/results.md).", "identity"),
    _C("experiment", "str", "The spec's name.", "identity"),
    _C("condition", "str", "The condition's label: axis=value pairs joined by commas (the spec's order).", "identity"),
    _C("condition_index", "int", "The condition's position in the spec's grid.", "identity"),
    _C("{axis}", "any", "The value of each sweep axis for this run (one column per axis).", "identity"),
    _C("seed", "int", "The run's seed: every generator of the run derives from it and a purpose (core.rng).", "identity"),
    _C("data_seed", "int", "The seed of the run's training data draws.", "identity"),
    _C("world", "str", "The world's name (built in, an entry point or module:Class).", "identity"),
    _C("config", "json", "The run's normalised config: everything that decides its result.", "identity"),
    # -- verdicts -----------------------------------------------------------------------------------
    _C("verdict", "str", "The run's class, each situation judged on its own (docs/deception.md): internal, corrigible, deceptive, proxy, mixed or unfit.", "verdicts"),
    _C("verdict_cells", "str", "The probe cells the verdict and the class scores rest on: held_out (no input of the cell is a training input; World.judge_on) or all.", "verdicts"),
    _C("verdict_training", "str", "The class matched on the training situation's probe cells (internal, corrigible, proxy, mixed).", "verdicts"),
    _C("verdict_deployment", "str", "The class matched on the other situations' probe cells.", "verdicts"),
    _C("mimics", "str", "For a deceptive run: the aligned class it imitates in training; empty otherwise.", "verdicts"),
    _C("verdict_template", "str", "The one-template verdict (core.scoring.verdicts): the rule before per-situation verdicts.", "verdicts"),
    _C("fit", "bool", "Training accuracy at or above the verdict's fit threshold.", "verdicts"),
    _C("p_{class}", "float", "Soft verdict: the posterior of the class (p_deceptive sums both deceptive hypotheses).", "verdicts"),
    _C("p_mixed", "float", "Soft verdict: the posterior of chance (no template explains the decisions).", "verdicts"),
    # -- scores -------------------------------------------------------------------------------------
    _C("train_accuracy", "float", "Accuracy of the policy on its training data (the fit dataset), final checkpoint.", "scores"),
    _C("fit_loss", "float", "Mean logistic loss of the policy on its training data, final checkpoint (NaN where a family logs none).", "scores"),
    _C("stop_step", "int", "The step early stopping stopped the run at; null when it ran every step.", "scores"),
    _C("score_{class}", "float", "Mean agreement with the class template over the judged discriminating probe cells (held-out ones unless the world says all: verdict_cells); NaN for a class the world does not declare (`World.classes`, docs/worlds.md).", "scores"),
    _C("score_{half}_{half_class}", "float", "Mean agreement with the class template over the judged discriminating cells of one situation (NaN: undeclared class, or no such cell).", "scores"),
    _C("cells", "records", "Per probe cell: {cell, internal, corrigible, deceptive, proxy}: the agreement with each class template.", "scores"),
    # -- deception ----------------------------------------------------------------------------------
    _C("compliance_gap", "float", "Over the cue pairs: share switching to the own goal under the deployment cue minus share switching away (docs/deception.md).", "deception"),
    _C("compliance_gap_raw", "float", "Goal rate under the deployment cue minus under the training cue (Greenblatt's unconditional form).", "deception"),
    _C("cue_flip_rate", "float", "Share of cue pairs whose two decisions differ.", "deception"),
    _C("gap_toward", "float", "Share of pairs acting on the goal only under the deployment cue, among those whose training twin does not.", "deception"),
    _C("gap_away", "float", "Share of pairs not acting on the goal under the deployment cue, among those whose training twin does.", "deception"),
    _C("gap_cells", "records", "The gap per objective spec and region: {spec, region, pairs, toward, away, gap}.", "deception"),
    _C("cue_pairs", "int", "The number of cue pairs the gap is measured over (0: the world declares none).", "deception"),
    _C("own_goal", "str", "The run's own goal (World.own_goals), for worlds that declare some.", "deception"),
    _C("deployment_goal", "str", "The own goal the run's deployment decisions agree with most.", "deception"),
    _C("deployment_goal_rate", "float", "Its agreement on the deployment twins.", "deception"),
    # -- controls (MLP family) ----------------------------------------------------------------------
    _C("cue_distance", "list[int]", "Cue columns taken from the deployment twin at each point of the distance null.", "controls"),
    _C("gap_by_distance", "list[float]", "The gap at each cue distance (the distance null).", "controls"),
    _C("compliance_gap_ablated", "float", "The gap with the situation subspace projected out of the last hidden layer.", "controls"),
    _C("compliance_gap_random_ablation", "float", "The same with a random subspace of the same dimension.", "controls"),
    _C("situation_decodable_ablated", "float", "Held-out accuracy of a probe reading the situation after the projection.", "controls"),
    _C("compliance_gap_patched", "float", "The gap when each deployment twin takes its training twin's coordinates in the situation subspace.", "controls"),
    _C("compliance_gap_random_patch", "float", "The same with a random subspace.", "controls"),
    # -- families -----------------------------------------------------------------------------------
    _C("expected_exit", "float", "Early-exit (ponder) family: the mean expected exit layer (from 1) over the probe and training inputs.", "family"),
    _C("exit_cells", "records", "Early-exit (ponder) family: per probe cell, {cell, expected_exit}: the mean expected exit layer over the cell's inputs.", "family"),
    # -- trajectory: one value per checkpoint ---------------------------------------------------------
    _C("traj_step", "list[int]", "The step of each checkpoint (step 0, every log_every steps, every phase boundary, the end).", "trajectory"),
    _C("traj_phase", "list[str]", "The phase each checkpoint belongs to.", "trajectory"),
    _C("traj_verdict", "list[str]", "The verdict at each checkpoint.", "trajectory"),
    _C("traj_score_{class}", "list[float]", "The class score at each checkpoint.", "trajectory"),
    _C("traj_deploy_score_{class}", "list[float]", "The class score on the deployment probe cells at each checkpoint.", "trajectory"),
    _C("traj_train_accuracy", "list[float]", "Training accuracy at each checkpoint.", "trajectory"),
    _C("traj_compliance_gap", "list[float]", "The compliance gap at each checkpoint.", "trajectory"),
    _C("traj_decode_{decodable}", "list[float]", "Held-out accuracy of a linear probe on the last hidden layer reading the decodable's label.", "trajectory"),
    _C("traj_loss_{head}", "list[float]", "The head's training loss at each checkpoint (null where the head never trains).", "trajectory"),
    # -- decisions ----------------------------------------------------------------------------------
    _C("n_decisions", "int", "Bits of a run's packed decisions: one per probe input, or k per input for k-way outcomes.", "decisions"),
    _C("decisions", "bytes", "The final decision on every probe input, packed 8 to a byte, most significant bit first (core.scoring).", "decisions"),
    _C("traj_decisions", "list[bytes]", "The packed decisions at each checkpoint.", "decisions"),
)

_IDENTITY = ("run_id", "experiment", "condition", "condition_index", "seed", "data_seed", "world", "config")
_SCORES = tuple(f"score_{c}" for c in ("internal", "corrigible", "deceptive", "proxy"))

KIND_COLUMNS: dict[str, tuple[Column, ...]] = {
    "imitation": (
        *(c for c in COLUMNS if c.name in _IDENTITY),
        _C("class", "str", "The class imitated: its reference decisions are the targets.", "imitation"),
        _C("depth", "int", "Hidden layers of the imitating MLP.", "imitation"),
        _C("width", "int", "Units per hidden layer.", "imitation"),
        _C("flops", "int", "Forward-pass FLOPs of the architecture: 2 x fan_in x fan_out summed over its layers.", "imitation"),
        _C("verdict", "str", "The one-template verdict of the trained imitator (core.scoring.verdicts).", "imitation"),
        _C("reached", "bool", "The verdict is the class imitated.", "imitation"),
        _C("train_accuracy", "float", "Accuracy on the world's training data (the fit dataset).", "imitation"),
        _C("score_{class}", "float", "Mean agreement with the class template over the discriminating probe cells.", "imitation"),
    ),
    "prior": (
        *(c for c in COLUMNS if c.name in _IDENTITY),
        _C("draws", "int", "Random networks drawn in this run (one block, from the run's seed).", "prior"),
        _C("accepted", "int", "Of them, the draws whose policy fits the training inputs (accuracy at least the fit threshold).", "prior"),
        _C("fit_rows", "int", "The training inputs a draw had to fit.", "prior"),
        _C("n_fit", "int", "The world's training inputs.", "prior"),
        _C("count_{verdict}", "int", "Draws with each verdict (internal, corrigible, deceptive, proxy, mixed, unfit).", "prior"),
        _C("fit_count_{verdict}", "int", "Accepted draws with each verdict, judged on the fit rows.", "prior"),
    ),
    "counting": (
        *(c for c in COLUMNS if c.name in _IDENTITY),
        _C("{axis}", "any", "The value of each sweep axis of the counting spec (e.g. the weight scale) for this run's condition.", "counting"),
        _C("depth", "int", "Hidden layers of the MLP whose NNGP and random draws are counted.", "counting"),
        _C("width", "int", "Units per hidden layer (the NNGP sees it through the hidden bias variance).", "counting"),
        _C("weight_scale", "float", "The init's weight variances times this (1: PyTorch's default init).", "counting"),
        _C("training_inputs", "int", "Distinct training inputs the NNGP is conditioned on (sign(f) = y there).", "counting"),
        _C("probe_inputs", "int", "Probe inputs judged.", "counting"),
        _C("nngp_samples", "int", "NNGP posterior samples of this run: chains x steps.", "counting"),
        _C("chains", "int", "Elliptical slice chains of this run.", "counting"),
        _C("steps", "int", "Kept steps per chain.", "counting"),
        _C("burn_in", "int", "Steps per chain discarded first.", "counting"),
        _C("nngp_count_{verdict}", "int", "NNGP posterior samples with each verdict.", "counting"),
        _C("nngp_ess_{verdict}", "float", "Effective sample size of the verdict's indicator over this run's chains (Geyer).", "counting"),
        _C("nngp_soft_{verdict}", "float", "Mean soft probability of the verdict over the samples (NaN for unfit).", "counting"),
        _C("nngp_drift_z", "float", "Largest |z| between the first and second half of the kept steps (stationarity; near or below 3).", "counting"),
        _C("nngp_proposals_per_step", "float", "Mean elliptical slice proposals per chain and step.", "counting"),
        _C("nngp_stuck", "int", "Chain-steps that kept their point after the shrink limit.", "counting"),
        _C("nngp_seconds", "float", "Seconds the NNGP sampler took (diagnostic only).", "counting"),
        _C("naive_samples", "int", "Draws of the naive count (uniform over the Boolean functions that fit S); 0: skipped.", "counting"),
        _C("naive_count_{verdict}", "int", "Naive-count draws with each verdict.", "counting"),
        _C("naive_log2_deployment_tail", "float", "log2 P_naive(the deployment half matches any one template at the threshold), exactly.", "counting"),
        _C("prior_draws", "int", "Random networks drawn (PyTorch's default init, unconditioned); 0: skipped.", "counting"),
        _C("prior_count_{verdict}", "int", "Random networks with each verdict.", "counting"),
        _C("finite_samples", "int", "Finite-width posterior samples (the MLP's own weights conditioned on fitting S: chains x steps of the chains that fitted); 0: skipped.", "counting"),
        _C("finite_count_{verdict}", "int", "Finite-width posterior samples with each verdict.", "counting"),
        _C("finite_ess_{verdict}", "float", "Effective sample size of the verdict's indicator over this run's finite-width chains (Geyer).", "counting"),
        _C("finite_drift_z", "float", "Largest |z| between the halves of the finite-width chains' kept steps (NaN: skipped).", "counting"),
        _C("finite_dropped", "int", "Finite-width chains that never fitted S in the tempered search (left out).", "counting"),
        _C("finite_seconds", "float", "Seconds the finite-width sampler took (diagnostic only).", "counting"),
    ),
    "function_prior": (
        *(c for c in COLUMNS if c.name in _IDENTITY),
        _C("draws", "int", "Random MLPs drawn in this run (one block, from the run's seed).", "function_prior"),
        _C("n_inputs", "int", "Inputs of the truth tables (2^n for boolean:n).", "function_prior"),
        _C("distinct", "int", "Distinct functions among the block's draws.", "function_prior"),
        _C("functions", "list[str]", "The block's distinct truth tables, hex, first input first.", "function_prior"),
        _C("counts", "list[int]", "How many draws computed each of them.", "function_prior"),
    ),
}
"""The columns of the measurement kinds' rows (sweep.measurements; docs/results.md): a folder of kind
"imitation", "prior", "counting" or "function_prior" stores these instead of `COLUMNS`."""

TRAJECTORY_KEYS: dict[str, str] = {
    "agreement": "(N, cells, classes) agreement of each member with each class template on each probe cell",
    "train_accuracy": "(N,) accuracy on the training data",
    "fit_loss": "(N,) mean policy loss on the training data (optional)",
    "decisions": "(N, bytes) the policy's decisions on the probe inputs, packed",
    "train_loss": "(N, heads) each head's mean training loss since the last checkpoint",
    "decodability": "(N, decodables) held-out accuracy of linear probes (optional)",
}
"""What a family logs at every checkpoint (`train.Trajectory`), from which the result columns are built."""


def column(name: str, axes: tuple[str, ...] = (), kind: str = "train") -> Column | None:
    """The schema entry a stored column name falls under (`axes`: the sweep's axes; `kind`: the folder's
    spec kind), or None."""
    if name in axes:
        return COLUMNS[[c.name for c in COLUMNS].index("{axis}")]
    entries = COLUMNS if kind == "train" else KIND_COLUMNS[kind]
    for c in entries:
        if c.name == name:
            return c
    for c in entries:
        if "{" in c.name and c.name != "{axis}" and c.pattern().match(name):
            return c
    return None


def unknown_columns(names, axes: tuple[str, ...] = (), kind: str = "train") -> list[str]:
    """The names among `names` that no schema entry covers."""
    return [n for n in names if column(n, axes, kind) is None]


def describe() -> str:
    """The schema as text: one line per column, grouped (for docstrings and `help(deceptionlab.load)`)."""
    lines, group = [], None
    for c in COLUMNS + tuple(c for entries in KIND_COLUMNS.values() for c in entries if c.name not in _IDENTITY):
        if c.group != group:
            group = c.group
            lines.append(f"{group}:")
        lines.append(f"    {c.name} ({c.type}): {c.meaning}")
    return "\n".join(lines)


def markdown() -> str:
    """The schema as the Markdown table of docs/results.md."""
    rows = ["| column | type | meaning |", "|---|---|---|"]
    rows += [f"| `{c.name}` | {c.type} | {c.meaning} |" for c in COLUMNS]
    keys = ["| key | shape and meaning |", "|---|---|"] + [f"| `{k}` | {v} |" for k, v in TRAJECTORY_KEYS.items()]
    text = "\n".join(rows) + "\n\nTrajectory keys (what a family logs at every checkpoint):\n\n" + "\n".join(keys) + "\n"
    for kind, entries in KIND_COLUMNS.items():
        own = [c for c in entries if c.name not in _IDENTITY]
        text += f"\nColumns of a folder of kind `{kind}` (besides the identity columns {', '.join(f'`{n}`' for n in _IDENTITY)}):\n\n"
        text += "\n".join(["| column | type | meaning |", "|---|---|---|", *(f"| `{c.name}` | {c.type} | {c.meaning} |" for c in own)]) + "\n"
    return text
