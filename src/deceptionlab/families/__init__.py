"""Model families: how one kind of model is built, trained and scored on a world.

A world names its family (`World.family`, "mlp" unless it says otherwise); the executor and the
measurements reach models only through it (`family_for`: a config may ask for another, e.g.
`model.compute_penalty` for the early-exit family "ponder"). A family provides
- `train_chunk(world, config, runs, device, on_fraction)`: train one batched ensemble (a chunk of
  runs of one condition, model axis first) through the config's phases and return a `ChunkResult`:
  the trajectory (logged at every checkpoint: "agreement" (N, cells, classes), "train_accuracy" (N,),
  "fit_loss" (N,), "decisions" (N, bytes), "train_loss" (N, heads) and, if measured,
  "decodability"; with `stop_step` per member), the evaluator that scored it, when the config asks,
  the final weights flattened to (N, P), and any further per-run result columns it measures;
- `evaluator(world, device)`: the object that scores models of the family on the world's probe
  cells; it has `cell_names`, `discriminating`, `deployment`, `n_probe`, `n_decisions` (bits of a
  run's packed decisions), `fit_y` and `decodable_names`, and `outputs(model)`: the policy's code on
  every probe input then every fit input, which `score_outputs` compares with the templates;
- `n_outputs(world)`: the readout columns a model of the family needs (one per head for "mlp");
- `policy_loss(world, model)`: each member's policy loss on its training data, (N,) (loss barriers);
- `imitation_data(world)`: inputs, each class's reference targets on them and the outputs an imitator
  needs (`measure.speed`'s compute per class);
- `algorithms`: how a phase may train the policy (`PhaseSpec.algorithm`): "supervised", and for
  families that roll out episodes, "reinforce".

Every family subclasses `base.Family`, which runs its training through the one loop
(`train.loop.run_phases`) and declares what spec fields it honours (`capabilities`) and what it needs
of a world (`world_protocol`), both checked when a spec is validated. Families register themselves with
`register`.
"""

from __future__ import annotations

from . import episodic, gridworld, mlp, ponder, transformer  # noqa: F401  (each registers its family)
from .base import CAPABILITIES, ChunkResult, Family, Need, build_phases, stopping_rule
from .registry import FAMILIES, register


def get_family(name: str) -> Family:
    """The family registered under `name`; a ValueError listing the known families otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


def family_for(world, config) -> Family:
    """The family that trains `config`'s runs on `world`: the world's own, or the early-exit family
    "ponder" when the config sets `model.compute_penalty`."""
    return get_family("ponder" if config.model.compute_penalty is not None else world.family)


__all__ = ["CAPABILITIES", "ChunkResult", "Family", "FAMILIES", "Need", "build_phases", "family_for", "get_family", "register", "stopping_rule"]
