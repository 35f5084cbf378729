"""The one training loop: minibatches, checkpoints, early interventions, early stopping, logging.

Every training in the lab runs through `run_phases`: each model family's (`families.base.Family.
train_chunk`: mlp, ponder, transformer, gridworld with its REINFORCE phases), the trainers built on
them (`trainer.train`, `ponder.train_ponder`) and the speed measurement's imitators (full batch).
A family supplies, per phase, a step: a function that makes one optimisation step of every member on
given rows of the phase's data and returns the per-head loss sums (or a `Step`, which also hears where
each block of steps begins, or a `BlockSteps`, the compiled kernel's many steps per call); this loop
does everything around it, and is the only caller of the steps.

Each member draws its own minibatches from its own generator, in blocks of `BLOCK` steps, so a
member's data order does not depend on the ensemble it is trained in. Early stopping keeps that
promise too: a member stops on its own training accuracy, and a stopped member's weights are put
back after every step, so it ends exactly where it would have ended trained alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

BLOCK = 64  # steps of minibatch indices drawn per member at a time


@dataclass(frozen=True)
class HeadData:
    """One head trained in a phase: its readout index, its dataset (x, y) and its loss weight; `dataset`
    names the world's dataset (families that need more of it than x and y look it up)."""

    head: int
    x: torch.Tensor  # (P, n_in)
    y: torch.Tensor  # (P,) in {-1, +1}
    weight: float
    dataset: str = ""


@dataclass(frozen=True)
class Phase:
    name: str
    steps: int
    heads: list[HeadData]
    algorithm: str = "supervised"  # PhaseSpec.algorithm: how the policy head learns in this phase


@dataclass(frozen=True)
class Stopping:
    """Early stopping: a member stops at a checkpoint of the last phase once its training accuracy
    (the evaluator's "train_accuracy") has been at least `threshold` for `patience` checkpoints in a row."""

    threshold: float
    patience: int = 1


@dataclass
class Trajectory:
    """Checkpointed measurements: `values[name]` is (N, T, ...) over the steps in `steps`;
    `stop_step[m]` is the step at which member m stopped early (None: it trained to the end)."""

    steps: list[int] = field(default_factory=list)
    phase: list[str] = field(default_factory=list)
    values: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    stop_step: list[int | None] | None = None

    def log(self, step: int, phase: str, measured: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.phase.append(phase)
        for k, v in measured.items():
            self.values.setdefault(k, []).append(v.detach().cpu())

    def stacked(self) -> dict[str, torch.Tensor]:
        return {k: torch.stack(v, 1) for k, v in self.values.items()}


StepFn = Callable[[torch.Tensor], torch.Tensor]
"""One step of every member on rows idx (N, R) of the phase pool (None in a full-batch loop); returns
per-head loss sums (N, heads)."""


class Step:
    """A step function that also hears, before each block of k steps is run, that it begins
    (`begin_block(k)`: e.g. to draw the block's rollout noise), and whose loss is per `loss_rows` rows
    (None: the loss sums are over the batch's rows, as a plain step's are)."""

    loss_rows: int | None = None

    def begin_block(self, k: int) -> None:
        pass

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class BlockSteps:
    """A step function that makes many steps per call (a compiled kernel): steps s0..s1-1 of a block of
    row indices (N, k, R), for the members where `active` (N,) is true (all when None; the others are
    left untouched), returning the per-head loss sums (N, heads) over those steps. The loop calls it once
    per stretch between checkpoints."""

    def __call__(self, block: torch.Tensor, s0: int, s1: int, active: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


MakeStep = Callable[[Phase, torch.Tensor, torch.Tensor], "StepFn | BlockSteps"]
"""(phase, xs (P, n_in), ys (P,): the phase's heads' data, concatenated in head order) -> its step."""


class _Stopper:
    """Which members have stopped, and their weights at that moment."""

    def __init__(self, rule: Stopping, params: list[torch.Tensor]):
        self.rule, self.params = rule, params
        n = params[0].shape[0]
        self.streak = torch.zeros(n, dtype=torch.long)
        self.stopped = torch.zeros(n, dtype=torch.bool)
        self.steps: list[int | None] = [None] * n
        self.frozen: list[torch.Tensor] | None = None
        self.mask: torch.Tensor | None = None  # (N, 1, 1) on the params' device

    @property
    def all_stopped(self) -> bool:
        return bool(self.stopped.all())

    def check(self, step: int, accuracy: torch.Tensor) -> None:
        fit = accuracy.cpu() >= self.rule.threshold
        self.streak = torch.where(fit, self.streak + 1, 0)
        newly = ~self.stopped & (self.streak >= self.rule.patience)
        if not newly.any():
            return
        for m in newly.nonzero().squeeze(1).tolist():
            self.steps[m] = step
        self.stopped |= newly
        new = newly.to(self.params[0].device).view(-1, *[1] * (self.params[0].dim() - 1))
        if self.frozen is None:
            self.frozen = [p.detach().clone() for p in self.params]
        else:
            self.frozen = [torch.where(new, p, f) for p, f in zip(self.params, self.frozen)]
        self.mask = self.stopped.to(self.params[0].device).view_as(new)

    def hold(self) -> None:
        """Put the stopped members' weights back (after a step of the whole ensemble)."""
        if self.frozen is not None:
            for p, f in zip(self.params, self.frozen):
                torch.where(self.mask, f, p, out=p.data)


def _draw(generators, k, batch_size, sizes, offsets, device="cpu") -> torch.Tensor:
    """(N, k, R) row indices: k steps of a minibatch per head, member by member."""
    return torch.stack(
        [torch.cat([torch.randint(sz, (k, batch_size), generator=g) + off for sz, off in zip(sizes, offsets)], 1) for g in generators]
    ).to(device)


def run_phases(
    params: list[torch.Tensor],
    phases: list[Phase],
    make_step: MakeStep,
    *,
    n_heads: int,
    batch_size: int | None,
    data_generators: list[torch.Generator],
    log_every: int | None,
    evaluate: Callable[[], dict[str, torch.Tensor]] | None,
    on_steps: Callable[[int], None] | None = None,
    early: tuple[int, list[torch.Generator]] | None = None,
    stopping: Stopping | None = None,
) -> Trajectory:
    """Run `phases` on the ensemble whose weights are `params` (model axis first; updated in place by
    the steps); log `evaluate()` with the per-head training loss at step 0, every `log_every` steps,
    at every phase boundary and at the end (nothing when `evaluate` is None).

    `early` = (k, generators): the minibatches of the first k steps come from those generators, and
    every later minibatch is the one the unperturbed run draws. `stopping`: members stop one by one
    in the last phase (their loss is NaN at checkpoints after they stopped; once all have, the
    remaining steps are skipped and only logged). `batch_size` None: full batch, every step sees every
    row of the phase (no minibatches are drawn; the step is called with idx None)."""
    device, n = params[0].device, params[0].shape[0]
    run = [p for p in phases if p.steps and p.heads]  # skipped phases never appear
    traj = Trajectory()
    if evaluate is not None:
        traj.log(0, run[0].name if run else "", {**evaluate(), "train_loss": torch.full((n, n_heads), float("nan"), device=device)})
    stopper = _Stopper(stopping, params) if stopping is not None else None
    flush = torch.set_flush_denormal(True)  # denormal floats (tiny Adam moments) are ~40x slower
    try:
        step = 0
        for phase in run:
            last = stopper if phase is run[-1] else None  # members stop only in the last phase
            step = _run_phase(phase, step, make_step, n, n_heads, batch_size, data_generators, log_every, evaluate, on_steps, early, traj, last, device)
    finally:
        if flush:
            torch.set_flush_denormal(False)
    traj.stop_step = stopper.steps if stopper is not None else [None] * n
    return traj


@torch.no_grad()
def _run_phase(phase, step, make_step, n_members, n_heads, batch_size, data_generators, log_every, evaluate, on_steps, early, traj, stopper, device) -> int:
    xs = torch.cat([h.x for h in phase.heads]).to(device)
    ys = torch.cat([h.y for h in phase.heads]).float().to(device)
    sizes = [len(h.x) for h in phase.heads]
    offsets = torch.tensor([0] + sizes[:-1]).cumsum(0).tolist()
    step_fn = make_step(phase, xs, ys)
    untrained = torch.ones(n_heads, dtype=torch.bool, device=device)
    untrained[[h.head for h in phase.heads]] = False
    loss_sum = torch.zeros(n_members, n_heads, device=device)
    rows = (step_fn.loss_rows if isinstance(step_fn, Step) else None) or batch_size or 1  # rows each loss is summed over
    since = done = 0
    while done < phase.steps:
        k = min(BLOCK, phase.steps - done)
        training = stopper is None or not stopper.all_stopped
        block = None
        if training and batch_size is not None:
            block = _draw(data_generators, k, batch_size, sizes, offsets, device)  # (N, k, R)
            if early is not None and step < early[0]:
                swap = min(k, early[0] - step)
                block[:, :swap] = _draw(early[1], swap, batch_size, sizes, offsets, device)
        if training and isinstance(step_fn, Step):
            step_fn.begin_block(k)
        s = 0
        while s < k:
            # the stretch up to the next checkpoint (one step at a time unless the step fn makes blocks)
            n = min(k - s, log_every - step % log_every) if log_every is not None else k - s
            if training and not isinstance(step_fn, BlockSteps):
                n = 1
                loss_sum += step_fn(None if block is None else block[:, s])
                if stopper is not None:
                    stopper.hold()
            elif training:  # stopped members are skipped: their weights stay as they were when they stopped
                active = None if stopper is None or stopper.frozen is None else ~stopper.stopped
                loss_sum += step_fn(block, s, s + n, active)
            # once every member has stopped, the steps left are only counted and logged
            step += n
            since += n
            s += n
            if log_every is not None and (step % log_every == 0 or done + s == phase.steps):
                if evaluate is not None:
                    per_head = loss_sum / (since * rows)
                    per_head[:, untrained] = float("nan")  # heads not trained in this phase
                    if stopper is not None:
                        per_head[stopper.stopped.to(device)] = float("nan")  # frozen during this interval
                    measured = evaluate()
                    traj.log(step, phase.name, {**measured, "train_loss": per_head})
                    if stopper is not None:
                        stopper.check(step, measured["train_accuracy"])
                        training = training and not stopper.all_stopped
                loss_sum.zero_()
                since = 0
        done += k
        if on_steps is not None:
            on_steps(k)
    return step
