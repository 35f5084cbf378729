"""The compiled kernel of MLP training: many steps of a block of members in one call.

`_train_kernel.c` runs the trainer's steps (forward, logistic loss, backward, SGD or Adam) member by
member, so that each member's weights and optimiser state stay in cache for all the steps between two
checkpoints. It is compiled with the system C compiler on first use (cached per source and CPU in
`$XDG_CACHE_HOME/deceptionlab`, default `~/.cache/deceptionlab`; -march=native, and without it when
that fails) and loaded with ctypes. Without a compiler, or with DECEPTIONLAB_NO_KERNEL=1, `load()`
returns None and the trainer takes its torch path, which computes the same steps
(tests/train/test_train_kernel.py checks that both agree).
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import torch

from ..core.native import compiled
from .loop import BlockSteps

SOURCE = Path(__file__).with_name("_train_kernel.c")
FLAGS = [["-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno"], ["-O3", "-ffp-contract=fast", "-fno-math-errno"]]  # native first, then portable
LINK = ["-shared", "-fPIC", "-lm", "-lpthread"]


@functools.lru_cache(maxsize=1)
def _load():
    lib = compiled(SOURCE, "train_kernel", FLAGS, LINK)
    if lib is None:
        return None
    fn = ctypes.CDLL(str(lib)).train_steps
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    fn.argtypes = [i, i, i, i, i, i, p, p, p, p, p, p, i, i, i, i, i, p, p, i, f, f, f, f, f, f, ctypes.c_long, p, p, i]
    fn.restype = ctypes.c_int
    return fn


@functools.lru_cache(maxsize=1)
def _load_eval():
    lib = compiled(SOURCE, "train_kernel", FLAGS, LINK)
    if lib is None:
        return None
    fn = ctypes.CDLL(str(lib)).eval_forward
    i, p = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = [i, i, i, i, i, i, p, p, i, i, p, i, p]
    fn.restype = ctypes.c_int
    return fn


def load():
    """The compiled `train_steps`, or None when it cannot be had (no compiler, disabled, build failed)."""
    if os.environ.get("DECEPTIONLAB_NO_KERNEL"):
        return None
    return _load()


def supports(params: list[torch.Tensor], optimizer: str, batch_size: int) -> bool:
    """Whether the kernel computes this training: an MLPEnsemble on the CPU in float32, hidden layers a
    multiple of 16 wide, the lab's SGD or Adam."""
    if optimizer not in ("sgd", "adam") or len(params) < 4 or len(params) > 64 or batch_size < 1:
        return False
    if any(p.device.type != "cpu" or p.dtype != torch.float32 or not p.is_contiguous() for p in params):
        return False
    width = params[0].shape[-1]
    return width % 16 == 0 and all(p.shape[-1] == width for p in params[:-2])


def _pointers(tensors) -> ctypes.Array | None:
    return None if tensors is None else (ctypes.c_void_p * len(tensors))(*[t.data_ptr() for t in tensors])


class KernelSteps(BlockSteps):
    """`steps(block, s0, s1, active)`: steps s0..s1-1 of a block of row indices (N, k, R) for the members
    where `active` (N,) is true (all when None), updating the parameters and the optimiser in place;
    returns the per-head loss sums (N, H) as the torch step does, summed over those steps."""

    def __init__(self, params, optimizer, xs, ys, block_heads, rowweight, batch_size, flush_denormal: bool = True):
        from .optim import Adam

        self.fn = load()
        self.params, self.opt = params, optimizer
        self.xs, self.ys = xs.float().contiguous(), ys.float().contiguous()
        self.block_heads = torch.tensor(block_heads, dtype=torch.int32)
        self.rowweight = rowweight.float().contiguous()
        self.batch, self.ftz = batch_size, int(flush_denormal)
        self.adam = isinstance(optimizer, Adam)
        self.p_params = _pointers(params)
        self.p_a = _pointers(optimizer.m if self.adam else optimizer.buf)
        self.p_b = _pointers(optimizer.v if self.adam else None)
        self.depth = len(params) // 2 - 1
        self.n_in, self.width, self.n_heads = params[0].shape[1], params[0].shape[2], params[-1].shape[-1]

    def __call__(self, block: torch.Tensor, s0: int, s1: int, active: torch.Tensor | None = None) -> torch.Tensor:
        n, k, rows = block.shape
        block = block.to(torch.int64).contiguous()
        loss = torch.zeros(n, self.n_heads)
        act = None if active is None else active.to(torch.uint8).contiguous()
        o = self.opt
        if self.adam:
            lr, mom, wd, (b1, b2), eps, t0 = o.lr, 0.0, o.weight_decay, o.betas, o.eps, o.t
        else:
            lr, mom, wd, b1, b2, eps, t0 = o.lr, o.momentum, o.weight_decay, 0.0, 0.0, 0.0, 0
        status = self.fn(
            n, torch.get_num_threads(), self.depth, self.n_in, self.width, self.n_heads, self.p_params, self.p_a, self.p_b,
            self.xs.data_ptr(), self.ys.data_ptr(), block.data_ptr(), k, s0, s1, rows, self.batch, self.block_heads.data_ptr(),
            self.rowweight.data_ptr(), int(self.adam), lr, mom, wd, b1, b2, eps, t0, None if act is None else act.data_ptr(),
            loss.data_ptr(), self.ftz,
        )
        if status == 1:
            raise MemoryError("train kernel: out of memory")
        if status:
            raise ValueError(f"train kernel: unsupported shapes (status {status})")
        if self.adam:
            o.t += s1 - s0
        return loss


def eval_supports(params: list[torch.Tensor]) -> bool:
    """Whether `forward` computes this ensemble: the kernel is there and the training kernel's shapes."""
    return load() is not None and supports(params, "sgd", 1)


def forward(params: list[torch.Tensor], x: torch.Tensor, head: int, keep: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLP ensemble `params` on inputs x (M, n_in) shared by all members: the logit of `head` (N, M) and
    the last hidden layer of the first `keep` rows (N, keep, width), equal bit for bit to what
    `MLPEnsemble.trunk` and `readout` give, without materialising the hidden layer of every row (the
    checkpoints' evaluation, `judge.cells.ProbeEvaluator`)."""
    fn = _load_eval()
    x = x.float().contiguous()
    n, width, n_heads = params[0].shape[0], params[0].shape[-1], params[-1].shape[-1]
    logits = torch.empty(n, len(x))
    hidden = torch.empty(n, keep, width)
    status = fn(
        n, torch.get_num_threads(), len(params) // 2 - 1, x.shape[1], width, n_heads, _pointers(params), x.data_ptr(), len(x), head,
        logits.data_ptr(), keep, hidden.data_ptr(),
    )
    if status == 1:
        raise MemoryError("eval kernel: out of memory")
    if status:
        raise ValueError(f"eval kernel: unsupported shapes (status {status})")
    return logits, hidden
