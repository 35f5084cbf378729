"""A tiny decoder-only transformer as a batched ensemble: every weight has a leading member axis N, and
every matmul is a bmm over members, so N independent models train as one tensor program.

Token and learned position embeddings, `depth` pre-LayerNorm blocks (causal multi-head attention, then
a GELU MLP of 4 x width), a final LayerNorm and a linear readout at the last position (the answer
marker). Training uses autograd (the model is small; the per-member optimisers of `train.optim` step
the parameter list); each member's init is drawn from its own generator, so member k of an ensemble is
the same model as that run trained alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

N_HEADS = 2  # attention heads per layer (width must be a multiple)


def _layer_norm(h: torch.Tensor, g: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last axis with per-member gain and bias g, b (N, d); h (N, ..., d)."""
    view = (g.shape[0],) + (1,) * (h.dim() - 2) + (g.shape[-1],)
    return F.layer_norm(h, h.shape[-1:]) * g.view(view) + b.view(view)


def _mm(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """(N, ..., a) @ (N, a, c) [+ (N, c)] -> (N, ..., c), one bmm over members."""
    n, out = h.shape[0], w.shape[-1]
    y = torch.bmm(h.reshape(n, -1, h.shape[-1]), w)
    if b is not None:
        y = y + b.unsqueeze(1)
    return y.view(*h.shape[:-1], out)


class TransformerEnsemble:
    """N decoder-only transformers over a vocabulary of `vocab` tokens and sequences of `seq_len`."""

    def __init__(self, params: dict[str, torch.Tensor], n_heads: int = N_HEADS):
        self.params_by_name = params
        self.params = list(params.values())  # what the optimisers step, in a fixed order
        self.n_heads = n_heads
        self.depth = sum(1 for k in params if k.endswith(".qkv"))

    @property
    def n_members(self) -> int:
        return self.params[0].shape[0]

    @staticmethod
    def shapes(vocab: int, seq_len: int, depth: int, width: int, n_out: int) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape of one member (no model axis), in the order of `params`."""
        d = width
        s: dict[str, tuple[int, ...]] = {"tok": (vocab, d), "pos": (seq_len, d)}
        for i in range(depth):
            s |= {f"{i}.ln1.g": (d,), f"{i}.ln1.b": (d,), f"{i}.qkv": (d, 3 * d), f"{i}.qkv.b": (3 * d,), f"{i}.proj": (d, d), f"{i}.proj.b": (d,),
                  f"{i}.ln2.g": (d,), f"{i}.ln2.b": (d,), f"{i}.fc": (d, 4 * d), f"{i}.fc.b": (4 * d,), f"{i}.out": (4 * d, d), f"{i}.out.b": (d,)}
        return s | {"lnf.g": (d,), "lnf.b": (d,), "head": (d, n_out), "head.b": (n_out,)}

    @classmethod
    def init(cls, vocab: int, seq_len: int, depth: int, width: int, n_out: int, generators: list[torch.Generator], device="cpu") -> "TransformerEnsemble":
        """GPT-2-like init, member by member from each member's own generator: embeddings N(0, 1), matrices
        N(0, 1/fan_in) (residual outputs scaled by 1/sqrt(2 depth)), biases 0, LayerNorm gains 1."""
        if width % N_HEADS:
            raise ValueError(f"model.width must be a multiple of {N_HEADS} (the attention heads) for the transformer family, got {width}")
        shapes = cls.shapes(vocab, seq_len, depth, width, n_out)
        members = []
        for g in generators:
            p = {}
            for name, shape in shapes.items():
                if name.endswith(".g"):
                    p[name] = torch.ones(shape)
                elif name.endswith(".b"):
                    p[name] = torch.zeros(shape)
                elif name in ("tok", "pos"):
                    p[name] = torch.randn(shape, generator=g)
                else:
                    scale = 1 / math.sqrt(shape[0]) * (1 / math.sqrt(2 * depth) if name.endswith((".proj", ".out")) else 1.0)
                    p[name] = torch.randn(shape, generator=g) * scale
            members.append(p)
        return cls({k: torch.stack([m[k] for m in members]).to(device) for k in shapes})

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (N, B, T) long, or (B, T) shared by all members -> (logits (N, B, n_out), hidden (N, B, d)):
        the readout and the final residual stream (after the last LayerNorm) at the last position."""
        p = self.params_by_name
        n = self.n_members
        if tokens.dim() == 2:
            tokens = tokens.expand(n, -1, -1)
        _, b, t = tokens.shape
        d = p["tok"].shape[-1]
        heads, dh = self.n_heads, d // self.n_heads
        member = torch.arange(n, device=tokens.device).view(n, 1, 1)
        h = p["tok"][member, tokens] + p["pos"][:, :t].unsqueeze(1)  # (N, B, T, d)
        mask = torch.full((t, t), float("-inf"), device=tokens.device).triu(1)  # causal, added to the scores
        for i in range(self.depth):
            a = _layer_norm(h, p[f"{i}.ln1.g"], p[f"{i}.ln1.b"])
            qkv = _mm(a, p[f"{i}.qkv"], p[f"{i}.qkv.b"]).view(n * b, t, 3, heads, dh).permute(2, 0, 3, 1, 4)  # (3, N*B, H, T, dh)
            q, k, v = (z.reshape(n * b * heads, t, dh) for z in qkv)
            if i == self.depth - 1:  # only the answer position is read out: the last block needs only its query
                q, mask, h = q[:, -1:], mask[-1:], h[:, :, -1:]
            att = torch.baddbmm(mask, q, k.transpose(1, 2), alpha=1 / math.sqrt(dh)).softmax(-1)
            o = torch.bmm(att, v).view(n, b, heads, -1, dh).transpose(2, 3).reshape(n, b, -1, d)
            h = h + _mm(o, p[f"{i}.proj"], p[f"{i}.proj.b"])
            m = _layer_norm(h, p[f"{i}.ln2.g"], p[f"{i}.ln2.b"])
            h = h + _mm(F.gelu(_mm(m, p[f"{i}.fc"], p[f"{i}.fc.b"])), p[f"{i}.out"], p[f"{i}.out.b"])
        last = _layer_norm(h[:, :, -1], p["lnf.g"], p["lnf.b"])  # (N, B, d)
        return _mm(last, p["head"], p["head.b"]), last

    def logits(self, tokens: torch.Tensor, max_rows: int = 1024) -> torch.Tensor:
        """Inference on token rows shared by all members, (M, T) -> (N, M, n_out), in slices of rows."""
        return torch.cat([self.forward(tokens[i : i + max_rows])[0] for i in range(0, len(tokens), max_rows)], 1)

    def trunk(self, tokens: torch.Tensor, max_rows: int = 1024) -> torch.Tensor:
        """The final residual stream at the answer position on shared token rows, (M, T) -> (N, M, d)."""
        return torch.cat([self.forward(tokens[i : i + max_rows])[1] for i in range(0, len(tokens), max_rows)], 1)

    def flat(self) -> torch.Tensor:
        """Every member's parameters flattened, (N, P) float32, in the order of `params`."""
        return torch.cat([q.reshape(self.n_members, -1) for q in self.params], 1).float().cpu()

    @classmethod
    def from_flat(cls, flat: torch.Tensor, vocab: int, seq_len: int, depth: int, width: int, n_out: int) -> "TransformerEnsemble":
        """The inverse of `flat`: (N, P) -> an ensemble (stored weights, e.g. for loss barriers)."""
        shapes = cls.shapes(vocab, seq_len, depth, width, n_out)
        sizes = [math.prod(s) for s in shapes.values()]
        if sum(sizes) != flat.shape[-1]:
            raise ValueError(f"stored weights hold {flat.shape[-1]} numbers, the config's transformer needs {sum(sizes)}")
        parts = flat.split(sizes, -1)
        return cls({k: v.reshape(len(flat), *s) for (k, s), v in zip(shapes.items(), parts)})
