"""Batched MLP ensembles: N independent networks as one tensor program, model axis first.

Forward and backward are written out by hand with batched matmuls (`bmm`): for many tiny
networks this is what keeps the arithmetic units busy; autograd's per-op bookkeeping would cost more
than the matmuls themselves. `tests/models/test_ensemble.py` checks the gradients against autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Cache:
    """Activations the backward pass needs."""

    x: torch.Tensor  # (N, R, n_in)
    hidden: list[torch.Tensor]  # depth x (N, R, width), post-ReLU
    block_heads: list[int] | None = None  # in block mode, the head read out in each block of rows
    w_blocks: torch.Tensor | None = None  # (N, E, 1, width) those heads' weights


class MLPEnsemble:
    """N MLPs: `depth` ReLU layers of `width`, then a linear readout per head (one logit each).

    Parameters are a flat list [W_1, b_1, ..., W_depth, b_depth, W_head, b_head] with W_l of shape
    (N, fan_in, fan_out) and b_l of shape (N, 1, fan_out).
    """

    def __init__(self, params: list[torch.Tensor]):
        self.params = params

    @classmethod
    def init(
        cls, n_in: int, depth: int, width: int, n_heads: int, generators: list[torch.Generator], device="cpu"
    ) -> "MLPEnsemble":
        """PyTorch's default `nn.Linear` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn member by member
        from each member's own generator, so a member's init does not depend on its ensemble."""
        shapes = [(n_in if i == 0 else width, width) for i in range(depth)] + [(width if depth else n_in, n_heads)]
        per_member = []
        for g in generators:
            tensors = []
            for fan_in, fan_out in shapes:
                bound = 1.0 / math.sqrt(fan_in)
                tensors.append((torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound)
                tensors.append(((torch.rand(1, fan_out, generator=g) * 2 - 1) * bound))
            per_member.append(tensors)
        params = [torch.stack([m[i] for m in per_member]).to(device).contiguous() for i in range(len(per_member[0]))]
        return cls(params)

    @property
    def n_members(self) -> int:
        return self.params[0].shape[0]

    @property
    def depth(self) -> int:
        return len(self.params) // 2 - 1

    def forward(self, x: torch.Tensor, block_heads: list[int] | None = None) -> tuple[torch.Tensor, Cache]:
        """x: (N, R, n_in) -> logits (N, R, n_heads).

        Block mode (what training uses): given block_heads [h_0, ..., h_{E-1}] (distinct), the R rows
        are E equal blocks and block e is read out by head h_e only; returns (N, R). A width x 1
        readout as a batched matmul costs as much as a width x width layer; as a multiply-and-sum it
        costs almost nothing."""
        hidden, h = [], x
        for l in range(self.depth):
            h = torch.bmm(h, self.params[2 * l]).add_(self.params[2 * l + 1]).relu_()  # faster than baddbmm here
            hidden.append(h)
        if block_heads is None:
            return torch.bmm(h, self.params[-2]).add_(self.params[-1]), Cache(x, hidden)
        n, r, width = h.shape
        e = len(block_heads)
        w_blocks = self.params[-2][:, :, block_heads].transpose(1, 2).unsqueeze(2)  # (N, E, 1, width)
        logits = (h.view(n, e, r // e, width) * w_blocks).sum(-1) + self.params[-1][:, 0, block_heads].unsqueeze(-1)
        return logits.view(n, r), Cache(x, hidden, block_heads, w_blocks)

    def backward(self, cache: Cache, dlogits: torch.Tensor, input_grad: bool = False) -> list[torch.Tensor]:
        """Gradients of sum(dlogits * logits) w.r.t. every parameter, in `params` order. dlogits has the
        shape `forward` returned: (N, R, n_heads), or (N, R) in block mode. With `input_grad`, returns
        (gradients, the gradient w.r.t. the input x (N, R, n_in)): for a model that feeds this one."""
        grads: list[torch.Tensor] = [None] * len(self.params)  # type: ignore[list-item]
        acts = [cache.x] + cache.hidden
        last = self.depth
        if cache.block_heads is None:
            delta = dlogits
            grads[2 * last] = torch.bmm(acts[last].transpose(1, 2), delta)
            grads[2 * last + 1] = delta.sum(1, keepdim=True)
            delta = torch.bmm(delta, self.params[2 * last].transpose(1, 2))
        else:
            n, r, width = acts[last].shape
            e = len(cache.block_heads)
            d = dlogits.view(n, e, r // e, 1)
            gw = torch.zeros_like(self.params[-2])
            gb = torch.zeros_like(self.params[-1])
            gw[:, :, cache.block_heads] = (acts[last].view(n, e, r // e, width) * d).sum(2).transpose(1, 2)
            gb[:, 0, cache.block_heads] = d.sum((2, 3))
            grads[2 * last], grads[2 * last + 1] = gw, gb
            delta = (d * cache.w_blocks).view(n, r, width)
        for l in range(last - 1, -1, -1):
            delta = torch.ops.aten.threshold_backward(delta, acts[l + 1], 0)  # ReLU'
            grads[2 * l] = torch.bmm(acts[l].transpose(1, 2), delta)
            grads[2 * l + 1] = delta.sum(1, keepdim=True)
            if l > 0 or input_grad:
                delta = torch.bmm(delta, self.params[2 * l].transpose(1, 2))
        return (grads, delta) if input_grad else grads

    def forward_sparse(self, idx: torch.Tensor, val: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """`forward` on inputs given by their nonzero entries: column indices and values (N, R, k). The first
        layer is a weighted sum of k weight rows instead of a product with mostly-zero inputs (one-hot
        observations). Returns the logits (N, R, n_heads) and what `backward_sparse` needs."""
        w1, b1 = self.params[0], self.params[1]
        n, n_in, width = w1.shape
        flat = (idx + (torch.arange(n, device=idx.device) * n_in).view(n, 1, 1)).flatten()
        h = (w1.reshape(n * n_in, width).index_select(0, flat).view(*idx.shape, width) * val.unsqueeze(-1)).sum(2).add_(b1).relu_()
        rest = MLPEnsemble(self.params[2:])
        z, cache = rest.forward(h)
        return z, (flat, val, h, rest, cache)

    def backward_sparse(self, state: tuple, dlogits: torch.Tensor) -> list[torch.Tensor]:
        """`backward` after `forward_sparse`: gradients of sum(dlogits * logits), in `params` order."""
        flat, val, h, rest, cache = state
        grads, dh = rest.backward(cache, dlogits, input_grad=True)
        delta = torch.ops.aten.threshold_backward(dh, h, 0)  # ReLU'
        w1 = self.params[0]
        gw = torch.zeros_like(w1)
        gw.view(-1, w1.shape[-1]).index_add_(0, flat, (delta.unsqueeze(2) * val.unsqueeze(-1)).flatten(0, 2))
        return [gw, delta.sum(1, keepdim=True), *grads]

    def trunk(self, x: torch.Tensor, max_rows: int = 128) -> torch.Tensor:
        """Last hidden layer on inputs shared by all members, x: (M, n_in) -> (N, M, width), computed in
        slices of rows small enough that each slice's activations stay in cache."""
        outs = []
        for i in range(0, x.shape[0], max_rows):
            h = x[i : i + max_rows].expand(self.n_members, -1, -1).contiguous()
            for l in range(self.depth):
                h = torch.bmm(h, self.params[2 * l]).add_(self.params[2 * l + 1]).relu_()
            outs.append(h)
        return torch.cat(outs, 1)

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Head logits from last-layer activations: (N, M, width) -> (N, M, n_heads)."""
        return torch.bmm(hidden, self.params[-2]).add_(self.params[-1])

    def logits(self, x: torch.Tensor, max_rows: int = 128) -> torch.Tensor:
        """Inference on inputs shared by all members, x: (M, n_in) -> (N, M, n_heads)."""
        return self.readout(self.trunk(x, max_rows))


def random_ensemble(n_in: int, depth: int, width: int, n_heads: int, members: int, generator: torch.Generator) -> MLPEnsemble:
    """`members` MLPs with PyTorch's default init, U(+-1/sqrt(fan_in)), drawn in one batch from one generator
    (the prior's random draws: measure.prior_volume).

    The same distribution as `MLPEnsemble.init` (which draws member by member from per-member
    generators, so that a trained run's init does not depend on its chunk); batched, it is ~50x faster."""
    import itertools

    dims = [n_in] + [width] * depth + [n_heads]
    params = []
    for fan_in, fan_out in itertools.pairwise(dims):
        bound = 1 / math.sqrt(fan_in)
        for shape in ((members, fan_in, fan_out), (members, 1, fan_out)):
            params.append(torch.rand(shape, generator=generator).mul_(2 * bound).sub_(bound))
    return MLPEnsemble(params)
