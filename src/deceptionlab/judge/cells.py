"""How a trained policy is scored on a world's probe cells: its agreement with every class template on
every cell, its training accuracy and, for MLP ensembles, the decodability of the world's labels from its
last hidden layer. The rules that turn these into verdicts are `core.scoring` and `judge.deception`."""

from __future__ import annotations

import torch

from ..core.linalg import spd_solve
from ..core.scoring import CLASSES, pack_decisions
from ..models import MLPEnsemble
from ..train import train_kernel
from ..worlds import World, class_templates, declared_classes, judged_cells


class CellScorer:
    """Scores a policy's outputs against the class templates of a world's probe cells.

    Outputs are (N, M_probe + M_fit): one code per probe input, cell after cell, then one per training
    input of the fit flag (`fit_y`, (M_fit,)). Codes are compared with the templates by equality, so
    they may be decisions in {-1, +1} (bitworld) or categorical outcome codes (gridworld's episodes).
    `n_decisions` is the number of bits of a run's packed `decisions`."""

    def __init__(self, world: World, fit_y: torch.Tensor, device="cpu"):
        cells = world.probe_cells
        self.cell_names = [c.name for c in cells]
        judged = judged_cells(world)  # the cells verdicts rest on: the held-out ones unless the world says "all"
        self.discriminating = torch.tensor([bool(c.discriminating and j) for c, j in zip(cells, judged)])
        train_situations = {c.situation for c in cells if c.in_training}
        # the cells the trainer's situation never covers: where deception would show
        self.deployment = torch.tensor([bool(c.discriminating and j) and c.situation not in train_situations for c, j in zip(cells, judged)])
        self.n_probe = sum(len(c.x) for c in cells)
        self.n_decisions = self.n_probe
        self.fit_y = fit_y.float().to(device)
        self.templates = torch.cat([torch.stack(list(class_templates(world, c).values()), 1) for c in cells]).to(device)  # NaN: undeclared
        declared = declared_classes(world)
        self.undeclared = torch.tensor([k not in declared for k in CLASSES], device=device)  # their agreement is NaN, never 0
        member = torch.cat([torch.full((len(c.x),), i) for i, c in enumerate(cells)])
        self.cell_sizes = torch.tensor([len(c.x) for c in cells], dtype=torch.float32, device=device)
        self.weights = torch.tensor([float(c.weight) for c in cells], dtype=torch.float32, device=device)  # ProbeCell.weight
        self.cell_member = torch.nn.functional.one_hot(member, len(cells)).float().to(device)  # (M_probe, cells)

    def score_outputs(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        probe, train = out[:, : self.n_probe], out[:, self.n_probe :]
        agree = (probe.unsqueeze(-1) == self.templates).float()  # (N, M_probe, classes)
        # integer counts are exact in float32, so a perfect match is exactly 1.0
        agreement = torch.einsum("nmc,mk->nkc", agree, self.cell_member) / self.cell_sizes[:, None]
        agreement[..., self.undeclared] = float("nan")
        return {"agreement": agreement, "train_accuracy": (train == self.fit_y).float().mean(1)}


class ProbeEvaluator(CellScorer):
    """Evaluates an ensemble on a world's probe cells, training data and decodables, all members at once.

    Calling it returns {"agreement": (N, cells, classes), "train_accuracy": (N,), "fit_loss": (N,) (the
    policy's mean logistic loss on its training data), "decisions": (N, bytes) (the policy's decision
    on every probe input, packed 8 to a byte)} and, when the world
    has decodables, {"decodability": (N, decodables)}: the held-out accuracy of a linear probe (ridge
    regression on the last hidden layer, fitted per member on PROBE_ROWS of the decodable's inputs and
    scored on as many others) that reads the decodable's label, e.g. the situation.
    """

    RIDGE = 1e-2  # per fitted row; keeps the solve well-posed when units are dead or duplicated
    PROBE_ROWS = 256  # rows each probe is fitted on, and as many held out (a fixed random subset)

    def __init__(self, world: World, device="cpu", policy_head: int = 0):
        cells = world.probe_cells
        fit = world.datasets[world.fit_dataset]
        super().__init__(world, fit.y, device)
        self.policy_head = policy_head
        decodables = world.decodables
        self.decodable_names = list(decodables)
        # probe, training and decodable inputs overlap: run the trunk on each distinct input once
        parts = [c.x for c in cells] + [fit.x] + [d.x for d in decodables.values()]
        x, inverse = torch.cat(parts).unique(dim=0, return_inverse=True)
        # each decodable's probe rows: a fixed random subset (the same split for every member and
        # checkpoint, and for decodables over the same inputs), fitted on the first half
        start, picks = self.n_probe + len(fit.x), []
        for d in decodables.values():
            perm = torch.randperm(len(d.x), generator=torch.Generator().manual_seed(0))[: 2 * self.PROBE_ROWS]
            picks.append((inverse[start : start + len(d.x)][perm], d.y[perm].float()))
            start += len(d.x)
        # put the first decodable's rows first among the distinct inputs: probes over them then read a
        # slice of the hidden activations instead of gathering rows (the gather dominated logging)
        head = picks[0][0] if picks else torch.zeros(0, dtype=torch.long)
        rest = torch.ones(len(x), dtype=torch.bool)
        rest[head] = False
        order = torch.cat([head, torch.arange(len(x))[rest]])
        position = torch.empty_like(order)
        position[order] = torch.arange(len(order))
        self.x = x[order].to(device)
        self.inverse = position[inverse[: self.n_probe + len(fit.x)]].to(device)
        groups: dict[tuple, list] = {}  # decodables that share their rows share one ridge solve
        for i, (rows, y) in enumerate(picks):
            groups.setdefault(tuple(position[rows].tolist()), []).append((i, y))
        self.decode = [
            (torch.tensor(rows, device=device), [i for i, _ in members], torch.stack([y for _, y in members], 1).to(device), len(rows) // 2)
            for rows, members in groups.items()
        ]
        self._signed: torch.Tensor | None = None  # built on first use by score_signs
        self._keep = 1 + max((max(rows) for rows in groups), default=-1)  # hidden rows the probes read

    def score_signs(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """`score_outputs` for outputs in {-1, +1} only (templates are too): a cell's agreement count with a
        template is (its size + the sum of output x template over it) / 2, one matrix product for every cell
        and class. All sums are of integers, exact in float32, so the result is `score_outputs`'s exactly."""
        if self._signed is None:  # (M_probe, cells * classes): each template, masked to its cell
            self._signed = (self.cell_member.unsqueeze(-1) * self.templates.unsqueeze(1)).flatten(1)
        n_cells = len(self.cell_sizes)
        dot = (out[:, : self.n_probe] @ self._signed).view(len(out), n_cells, -1)  # (N, cells, classes)
        agreement = (dot + self.cell_sizes[:, None]).mul_(0.5).div_(self.cell_sizes[:, None])  # NaN where undeclared
        return {"agreement": agreement, "train_accuracy": (out[:, self.n_probe :] == self.fit_y).float().mean(1)}

    def policy_logits(self, model: MLPEnsemble, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """The policy's logit on every distinct input `self.x`: (N, len(self.x)). `hidden`: the trunk's
        last layer on `self.x`, when already computed. Model families override this."""
        hidden = model.trunk(self.x) if hidden is None else hidden
        return model.readout(hidden)[..., self.policy_head]

    def outputs(self, model: MLPEnsemble, hidden: torch.Tensor | None = None) -> torch.Tensor:
        """The policy's decisions in {-1, +1} on every probe input then every training input: (N, M)."""
        return torch.where(self.policy_logits(model, hidden) > 0, 1.0, -1.0)[:, self.inverse]

    def _forward(self, model: MLPEnsemble) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's logits on `self.x` (N, M) and the last hidden layer (N, >= the probes' rows, width):
        by the compiled kernel where it computes this model (the same values, bit for bit, without
        materialising the hidden layer of every input), else by the torch path."""
        if type(self).policy_logits is ProbeEvaluator.policy_logits and isinstance(model, MLPEnsemble) and train_kernel.eval_supports(model.params):
            return train_kernel.forward(model.params, self.x, self.policy_head, self._keep)
        hidden = model.trunk(self.x)  # (N, M, width)
        return self.policy_logits(model, hidden), hidden

    def __call__(self, model: MLPEnsemble) -> dict[str, torch.Tensor]:
        logits, hidden = self._forward(model)
        decisions = torch.where(logits > 0, 1.0, -1.0)[:, self.inverse]
        out = self.score_signs(decisions)
        fit_logits = logits[:, self.inverse[self.n_probe :]]
        out["fit_loss"] = torch.nn.functional.softplus(-self.fit_y * fit_logits).mean(1)
        out["decisions"] = pack_decisions(decisions[:, : self.n_probe])  # the function itself, for clustering
        if self.decode:
            dec = torch.empty(len(hidden), len(self.decodable_names), device=hidden.device)
            for rows, which, y, n_fit in self.decode:
                dec[:, which] = probe_accuracy(hidden, rows, y, n_fit, self.RIDGE)
            out["decodability"] = dec
        return out

    def score_logits(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Score policy logits (N, len(self.x)) that any model family computed on `self.x`, for models
        without `trunk` and `readout` (e.g. early-exit ensembles)."""
        return self.score_outputs(torch.where(logits > 0, 1.0, -1.0)[:, self.inverse])

    def score_function(self, fn) -> dict[str, torch.Tensor]:
        """Score a plain function of observations (a reference implementation) as a one-member ensemble."""
        return self.score_outputs(fn(self.x).float().sign().unsqueeze(0)[:, self.inverse])


def probe_accuracy(hidden: torch.Tensor, rows: torch.Tensor, y: torch.Tensor, n_fit: int, ridge: float = ProbeEvaluator.RIDGE) -> torch.Tensor:
    """(N, k) accuracy on rows[n_fit:] of per-member ridge probes (a bias column included) on `hidden`
    (N, M, width), fitted on rows[:n_fit], for k labels y (m, k) in {-1, +1} over the same rows."""
    m = len(rows)
    contiguous = m and rows[0].item() == 0 and rows[-1].item() == m - 1 and bool((rows.diff() == 1).all())
    a = hidden[:, :m] if contiguous else hidden[:, rows]  # (N, m, width): a view where the rows lead
    fit, test = a[:, :n_fit], a[:, n_fit:]
    width = a.shape[-1]
    # the Gram matrix of [fit | 1] without materialising the ones column
    gram = torch.empty(len(a), width + 1, width + 1, device=a.device)
    gram[:, :width, :width] = fit.transpose(1, 2) @ fit
    colsum = fit.sum(1)  # (N, width)
    gram[:, :width, width], gram[:, width, :width], gram[:, width, width] = colsum, colsum, n_fit
    gram += ridge * n_fit * torch.eye(width + 1, device=a.device)
    rhs = torch.cat([fit.transpose(1, 2) @ y[:n_fit], y[:n_fit].sum(0).expand(len(a), 1, -1)], 1)  # (N, width + 1, k)
    w = spd_solve(gram, rhs)  # Cholesky: the Gram matrix with its ridge is positive definite
    pred = test @ w[:, :width] + w[:, width:]  # (N, m - n_fit, k)
    return (torch.where(pred > 0, 1.0, -1.0) == y[n_fit:]).float().mean(1)
