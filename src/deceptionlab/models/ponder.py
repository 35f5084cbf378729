"""Early-exit ("ponder") ensembles after PonderNet (Banino et al. 2021), model axis first.

A member is a trunk of L ReLU layers; after every layer l an output head gives logits z_l (one per
world head) and, after every layer but the last, a halting head gives lambda_l = P(stop at l | not
stopped before). The halting distribution is

    p_l = lambda_l * prod_{j<l} (1 - lambda_j),   p_L = prod_{j<L} (1 - lambda_j)  (the remainder),

so it sums to 1 for every input. The loss is the expected output loss plus a compute penalty
weighted by beta (per member, so one ensemble trains a whole sweep over beta):

    loss = sum_l p_l * BCE(z_l, y)  +  beta * penalty(p)

with penalty "layers" = E[exit layer] = sum_l l * p_l (the most direct price on compute), or "kl" =
KL(p || truncated geometric prior) as in PonderNet. The model's decision is the mixture
q = sum_l p_l * sigmoid(z_l), returned as the logit of q, so it is deterministic.

Unlike `MLPEnsemble`, gradients come from autograd: this family is small and correctness first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

PENALTIES = ("layers", "kl")


@dataclass
class PonderOutput:
    logits: torch.Tensor  # (N, R, L, n_heads) every exit's logits
    log_p: torch.Tensor  # (N, R, L) log of the halting distribution


class PonderEnsemble:
    """N early-exit MLPs of `depth` ReLU layers of `width`, each layer with output and halting heads.

    `params` is a dict of batched tensors, model axis first:
      trunk_w[l] (N, fan_in, width), trunk_b[l] (N, 1, width)     for l in 0..L-1
      out_w[l]   (N, width, n_heads), out_b[l] (N, 1, n_heads)      for l in 0..L-1
      halt_w[l]  (N, width, 1),       halt_b[l] (N, 1, 1)           for l in 0..L-2
    """

    def __init__(self, params: dict[str, list[torch.Tensor]]):
        self.params = params

    @classmethod
    def init(cls, n_in: int, depth: int, width: int, n_heads: int, generators: list[torch.Generator]) -> "PonderEnsemble":
        """`nn.Linear`'s default init, U(+-1/sqrt(fan_in)), member by member from each member's own
        generator, so a member's init does not depend on the ensemble it is in."""
        shapes = {
            "trunk": [(n_in if l == 0 else width, width) for l in range(depth)],
            "out": [(width, n_heads)] * depth,
            "halt": [(width, 1)] * (depth - 1),
        }
        per_member = []
        for g in generators:
            tensors = {}
            for kind, layer_shapes in shapes.items():
                for l, (fan_in, fan_out) in enumerate(layer_shapes):
                    bound = 1.0 / math.sqrt(fan_in)
                    tensors[f"{kind}_w", l] = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
                    tensors[f"{kind}_b", l] = (torch.rand(1, fan_out, generator=g) * 2 - 1) * bound
            per_member.append(tensors)
        params: dict[str, list[torch.Tensor]] = {}
        for kind, layer_shapes in shapes.items():
            for suffix in ("w", "b"):
                params[f"{kind}_{suffix}"] = [
                    torch.stack([m[f"{kind}_{suffix}", l] for m in per_member]).requires_grad_() for l in range(len(layer_shapes))
                ]
        return cls(params)

    def to(self, device) -> "PonderEnsemble":
        """The same members with their parameters on `device`."""
        return PonderEnsemble({k: [t.detach().to(device).requires_grad_() for t in ts] for k, ts in self.params.items()})

    @property
    def n_members(self) -> int:
        return self.params["trunk_w"][0].shape[0]

    @property
    def depth(self) -> int:
        return len(self.params["trunk_w"])

    def parameters(self) -> list[torch.Tensor]:
        return [t for ts in self.params.values() for t in ts]

    def forward(self, x: torch.Tensor) -> PonderOutput:
        """x: (N, R, n_in) -> every exit's logits and the log halting distribution."""
        p = self.params
        h, logits, halt = x, [], []
        for l in range(self.depth):
            h = torch.baddbmm(p["trunk_b"][l], h, p["trunk_w"][l]).relu()
            logits.append(torch.baddbmm(p["out_b"][l], h, p["out_w"][l]))
            if l < self.depth - 1:
                halt.append(torch.baddbmm(p["halt_b"][l], h, p["halt_w"][l]).squeeze(-1))
        return PonderOutput(torch.stack(logits, 2), halting_log_distribution(halt, x.shape[:2]))

    def _shared(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(self.n_members, -1, -1)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Decision logits on inputs shared by all members, x: (M, n_in) -> (N, M, n_heads): the logit
        of the mixture sum_l p_l * sigmoid(z_l)."""
        out = self.forward(self._shared(x))
        log_q1 = torch.logsumexp(out.log_p.unsqueeze(-1) + F.logsigmoid(out.logits), 2)
        log_q0 = torch.logsumexp(out.log_p.unsqueeze(-1) + F.logsigmoid(-out.logits), 2)
        return log_q1 - log_q0

    @torch.no_grad()
    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The last trunk layer on inputs shared by all members, x: (M, n_in) -> (N, M, width) (what
        linear probes read, as for `MLPEnsemble.trunk`)."""
        h = self._shared(x)
        for w, b in zip(self.params["trunk_w"], self.params["trunk_b"]):
            h = torch.baddbmm(b, h, w).relu()
        return h

    @torch.no_grad()
    def expected_exit(self, x: torch.Tensor) -> torch.Tensor:
        """E[exit layer] (layers counted from 1) on inputs shared by all members: (M, n_in) -> (N, M)."""
        return expected_layers(self.forward(self._shared(x)).log_p)


def halting_log_distribution(halt_logits: list[torch.Tensor], shape) -> torch.Tensor:
    """log p_l from the halting logits of layers 1..L-1 (each of `shape`): (*shape, L).

    In log space, log(lambda) = logsigmoid(h) and log(1 - lambda) = logsigmoid(-h), so a confident
    halting head neither underflows nor produces log(0)."""
    log_p, log_survive = [], torch.zeros(shape, device=halt_logits[0].device if halt_logits else None)
    for h in halt_logits:
        log_p.append(log_survive + F.logsigmoid(h))
        log_survive = log_survive + F.logsigmoid(-h)
    log_p.append(log_survive)  # the last layer takes what is left
    return torch.stack(log_p, -1)


def expected_layers(log_p: torch.Tensor) -> torch.Tensor:
    """sum_l l * p_l over the last axis, layers counted from 1."""
    layers = torch.arange(1, log_p.shape[-1] + 1, dtype=log_p.dtype, device=log_p.device)
    return (log_p.exp() * layers).sum(-1)


def geometric_log_prior(depth: int, lambda_p: float) -> torch.Tensor:
    """log of PonderNet's geometric prior lambda_p (1 - lambda_p)^(l-1), truncated to `depth` layers
    and renormalised: (depth,)."""
    l = torch.arange(depth, dtype=torch.float32)
    log_g = math.log(lambda_p) + l * math.log1p(-lambda_p)
    return log_g - torch.logsumexp(log_g, 0)


def ponder_loss(
    out: PonderOutput,
    y: torch.Tensor,
    head: torch.Tensor,
    beta: torch.Tensor,
    penalty: str = "layers",
    lambda_p: float = 0.5,
    row_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-member loss (N,) averaged over rows.

    y: (N, R) targets in {-1, +1}; head: (R,) which head each row trains; beta: (N,) per-member
    penalty weight; row_weight: (R,) loss weight of each row's output loss (default 1). BCE with
    +-1 targets is softplus(-y z). `lambda_p` is the geometric prior's halting rate (penalty "kl")."""
    return ponder_terms(out, y, head, beta, penalty, lambda_p, row_weight)[0]


def ponder_terms(out, y, head, beta, penalty="layers", lambda_p=0.5, row_weight=None) -> tuple[torch.Tensor, torch.Tensor]:
    """`ponder_loss` (N,) and, beside it, each row's expected output loss sum_l p_l BCE(z_l, y) (N, R),
    unweighted and without the penalty: what the trainer logs as a head's training loss."""
    z = out.logits.gather(3, head.view(1, -1, 1, 1).expand(*out.logits.shape[:3], 1)).squeeze(3)  # (N, R, L)
    bce = F.softplus(-y.unsqueeze(-1) * z)
    expected_bce = (out.log_p.exp() * bce).sum(-1)  # (N, R)
    weighted = expected_bce * row_weight if row_weight is not None else expected_bce
    if penalty == "layers":
        price = expected_layers(out.log_p)
    elif penalty == "kl":
        log_g = geometric_log_prior(out.log_p.shape[-1], lambda_p).to(out.log_p.device)
        price = (out.log_p.exp() * (out.log_p - log_g)).sum(-1)
    else:
        raise ValueError(f"unknown ponder penalty {penalty!r} (known: {', '.join(PENALTIES)})")
    return (weighted + beta.view(-1, 1) * price).mean(1), expected_bce
