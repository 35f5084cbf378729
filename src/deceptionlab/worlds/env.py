"""The environment protocol: worlds whose policy acts, over one step or many, and is judged by the
outcome of each probe episode (docs/worlds.md, "Agents over many steps").

An `Episodic` world is a `World` (datasets, heads, probe cells, templates) that also says how an
episode unfolds, for a batch of environments at once, in torch:

- `start(x)`: observations (E, input_dim) -> start states (E, d), a state being a vector of d numbers
  (any dtype). A probe cell's rows and a
  dataset's rows are start observations; by default a state is its observation (`start` and `observe`
  are the identity), so a world whose observation says everything only writes `step`;
- `observe(states)`: states (..., d) -> observations (..., input_dim);
- `step(states, actions)`: states (N, E, d) and actions (N, E) long -> (next states, outcome codes
  (N, E) long, done (N, E) bool). N is the ensemble's members, E the episodes: every member acts in its
  own copy of every episode. An episode ends at its first `done`, with that step's outcome; one still
  running after `max_steps` steps ends with outcome `timeout`;
- `outcomes`: the names of the outcome codes (0 .. len - 1). Templates are outcome codes: the outcome
  each class's policy reaches from each probe cell's start states;
- `n_actions`, `max_steps`, and optionally `key(states)` -> (N, E) long in [0, n_keys): for a policy that is
  a fixed function of the state (a greedy one), an episode that comes back to a key it visited loops
  until the step limit, so `rollout(..., greedy=True)` ends it there with outcome `timeout`.

Datasets of action heads are `Demonstrations`: start observations with a demonstrator's action (y) and
the outcome it reaches from there (`outcome`), so a family can imitate the actions (cross-entropy) or
reward reaching the outcome (REINFORCE). Binary heads keep +-1 `Dataset`s.

`Choice` is the one-step case: a policy with k discrete actions chooses once and the action is the
outcome (templates are action codes), e.g. a four-way classification or a multiple-choice answer.

`rollout` is the one loop every episodic world runs on, the built-in gridworld's too; the "episodic"
model family (families/episodic.py) trains and scores MLP policies on any world that follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from .base import Dataset, World

Policy = Callable[[torch.Tensor, int], torch.Tensor]
"""What a rollout asks at each step t: states (N, E, d) -> actions (N, E) long."""


@dataclass(frozen=True)
class Demonstrations(Dataset):
    """Start observations (x) with the demonstrator's action (y, the action index as a float) and the outcome
    code it reaches from each (`outcome`): imitation reads x -> y, a reward reaching `outcome` from x."""

    outcome: torch.Tensor | None = None  # (P,) long


@dataclass
class Rollout:
    """Episodes of N members from E start states; with `record`, what each member saw and did at each step."""

    outcome: torch.Tensor  # (N, E) outcome codes
    steps: torch.Tensor  # (N, E) steps taken (max_steps for an episode that timed out)
    states: torch.Tensor | None = None  # (N, E, T, d): the state before step t
    actions: torch.Tensor | None = None  # (N, E, T)
    alive: torch.Tensor | None = None  # (N, E, T) bool: step t was taken (the episode had not ended)


class Episodic(World):
    """A world whose policy acts in episodes: the environment protocol (module docstring). Subclasses set
    `outcomes`, `n_actions` and `max_steps` (class or instance attributes) and implement `step`."""

    family = "episodic"
    outcomes: tuple[str, ...] = ()  # class or instance attribute
    timeout: ClassVar[int] = 0  # the outcome code of an episode still running at the step limit
    n_actions: int
    max_steps: int

    def start(self, x: torch.Tensor) -> torch.Tensor:
        """Start observations (E, input_dim) -> states (E, d); by default a state is its observation."""
        return x

    def observe(self, states: torch.Tensor) -> torch.Tensor:
        """States (..., d) -> observations (..., input_dim); by default the identity."""
        return states

    def step(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of every environment: (next states, outcome codes (N, E) long, done (N, E) bool)."""
        raise NotImplementedError

    def key(self, states: torch.Tensor) -> torch.Tensor | None:
        """Optional: a key (N, E) long in [0, n_keys) per state, equal for states a greedy policy treats alike;
        None (the default) when the world has none, so greedy episodes run to the step limit."""
        return None

    n_keys: int = 0

    @property
    def head_outputs(self) -> dict[str, int]:
        """Readout columns per head: `n_actions` for a head trained on demonstrations, else 1 (a +-1 head)."""
        return {h: self.n_actions if isinstance(self.datasets.get(head.dataset), Demonstrations) else 1 for h, head in self.heads.items()}

    def rollout(self, starts: torch.Tensor, policy: Policy, members: int = 1, max_steps: int | None = None,
                record: bool = False, greedy: bool = False) -> Rollout:
        """Run `members` policies from start states at once until every episode is done or at the step limit.
        starts: (E, d), the same for every member, or (N, E, d). `greedy`: see `key`."""
        T = max_steps or self.max_steps
        s = starts.expand(members, *starts.shape).clone() if starts.dim() == 2 else starts.clone()
        n, e = s.shape[:2]
        outcome = torch.full((n, e), self.timeout, dtype=torch.long, device=s.device)
        steps = torch.zeros((n, e), dtype=torch.long, device=s.device)
        alive = torch.ones((n, e), dtype=torch.bool, device=s.device)
        key = self.key(s) if greedy else None
        visited = None
        if key is not None:
            visited = torch.zeros(n, e, self.n_keys, dtype=torch.bool, device=s.device)
            visited.scatter_(-1, key.unsqueeze(-1), True)
        log = [] if record else None
        for t in range(T):
            action = policy(s, t)
            if log is not None:
                log.append((s, action, alive))
            nxt, code, done = self.step(s.clone(), action)  # a step that writes into its states cannot touch ended episodes
            s = torch.where(alive.unsqueeze(-1), nxt, s)  # an ended episode stays put
            steps += alive
            ended = alive & done
            outcome = torch.where(ended, code, outcome)
            alive = alive & ~ended
            if visited is not None:
                k = self.key(s)
                loops = alive & visited.gather(-1, k.unsqueeze(-1)).squeeze(-1)
                steps = torch.where(loops, T, steps)
                alive = alive & ~loops
                visited.scatter_(-1, k.unsqueeze(-1), True)
            if not alive.any():
                break
        if log is None:
            return Rollout(outcome, steps)
        states, actions, alives = (torch.stack(v, 2) for v in zip(*log))
        return Rollout(outcome, steps, states, actions, alives)

    def function_policy(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Policy:
        """A rollout policy from a plain function of observations (n, input_dim) -> actions (n,) (a reference)."""

        def policy(states: torch.Tensor, t: int) -> torch.Tensor:
            x = self.observe(states)
            return fn(x.flatten(0, 1)).view(x.shape[:2]).long()

        return policy

    def reference_outcomes(self, cls: str, x: torch.Tensor) -> torch.Tensor:
        """The outcome codes (E,) class `cls`'s reference policy reaches from start observations x (E, input_dim)."""
        return self.rollout(self.start(x), self.function_policy(self.references[cls]), greedy=True).outcome[0]

    def problems(self, exact: bool = False) -> list[str]:
        """`World.problems`, plus the protocol's: outcome names, `start` and `observe` round trips, and with
        `exact` every reference policy's rollouts reproduce its template on every probe cell."""
        problems = super().problems(exact)
        if problems:
            return problems
        if not self.outcomes:
            return ["it names no outcomes (`outcomes`: the outcome codes' names)"]
        codes = torch.cat([t.flatten() for c in self.probe_cells for t in c.templates.values()])
        if not ((codes >= 0) & (codes < len(self.outcomes)) & (codes == codes.round())).all():
            return [f"templates must be outcome codes, integers in 0..{len(self.outcomes) - 1} (one per name in `outcomes`)"]
        for name in ("n_actions", "max_steps"):
            value = getattr(self, name, None)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                return [f"{name} must be a positive int, got {value!r}"]
        if type(self).step is Episodic.step:
            return ["it does not implement step(states, actions) -> (next states, outcome codes, done)"]
        if not 0 <= type(self).timeout < len(self.outcomes):
            return [f"timeout must be an outcome code, 0..{len(self.outcomes) - 1}, got {type(self).timeout!r}"]
        if isinstance(self, Choice) and len(self.outcomes) != self.n_actions:
            return [f"a Choice's outcomes name its actions: {len(self.outcomes)} outcomes for {self.n_actions} actions"]
        if type(self).key is not Episodic.key and (not isinstance(self.n_keys, int) or self.n_keys < 1):
            return [f"n_keys must be a positive int when key is defined (keys are 0..n_keys-1), got {self.n_keys!r}"]
        # every probe cell and dataset goes through start and observe (training reads observe(start(x)))
        for what, x in [*((f"probe cell {c.name!r}", c.x) for c in self.probe_cells), *((f"dataset {n!r}", d.x) for n, d in self.datasets.items())]:
            if not torch.equal(self.observe(self.start(x)).float(), x.float()):
                return [f"observe(start(x)) differs from x on {what}: start must read the state its observation shows"]
        for name, ds in self.datasets.items():
            if isinstance(ds, Demonstrations) and (ds.outcome is None or len(ds.outcome) != len(ds.x)):
                problems.append(f"dataset {name!r}: demonstrations need one outcome code per row")
            elif isinstance(ds, Demonstrations) and not ((ds.y >= 0) & (ds.y < self.n_actions) & (ds.y == ds.y.round())).all():
                problems.append(f"dataset {name!r}: actions must be integers in 0..{self.n_actions - 1}")
        if problems or not exact:
            return problems
        for cls in self.references:
            for c in self.probe_cells:
                got = self.reference_outcomes(cls, c.x)
                if not ((got >= 0) & (got < len(self.outcomes))).all():
                    return [f"step returned outcome codes outside 0..{len(self.outcomes) - 1} on cell {c.name!r} (reference {cls!r})"]
                if cls in c.templates and not torch.equal(got.float(), c.templates[cls].float()):
                    wrong = int((got.float() != c.templates[cls].float()).sum())
                    problems.append(f"reference {cls!r} reaches another outcome than its template on {wrong} of {len(c.x)} episodes of cell {c.name!r}")
        return problems


class Choice(Episodic):
    """A one-step episodic world: a policy with `n_actions` discrete actions chooses once, and the action it
    takes is the outcome (templates are action codes; `outcomes` name the actions). A subclass gives the
    data and cells like any world; training data are `Demonstrations` whose y and outcome are the action."""

    max_steps = 1

    def step(self, states, actions):
        return states, actions, torch.ones_like(actions, dtype=torch.bool)

    @staticmethod
    def demonstrations(x: torch.Tensor, actions: torch.Tensor, doc: str) -> Demonstrations:
        """A dataset of inputs x and the action to take on each (an action head's data)."""
        actions = actions.long()
        return Demonstrations(x, actions.float(), doc, actions)
