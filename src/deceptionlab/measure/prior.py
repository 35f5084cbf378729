"""The function prior of random networks: how often each function comes out of a random parameter draw.

Valle-Perez, Camargo and Louis (2019) sample the parameters of a fixed MLP many times, record the
function each draw computes on a finite input set (a truth table), and find the frequencies spread
over many orders of magnitude with the simple (low Lempel-Ziv complexity) functions most likely.
Their Boolean inputs are the 2^n vectors in {0,1}^n and the output bit is [logit > 0]; so here.

The sampler is a batched tensor program: a block of draws is one set of tensors with the draw axis
first, the forward pass is one matmul per layer for the whole block, each truth table is packed into
uint64 words and the block's distinct tables are counted; blocks are merged into a running table,
so memory grows with the number of distinct functions, never with the number of draws.

Two things make it fast without changing what is computed:
- Only the sign of the output matters, and ReLU is positively homogeneous, so each layer's scale
  (1/sqrt(fan_in), a, ...) can be moved out of the weights: weights are used as drawn from the unit
  distribution and only the biases (40 numbers per layer and draw, not 1,600) are rescaled.
- The random numbers (2,000 per draw for 7-40-40-1) cost a fair share of the arithmetic. Uniform
  inits use a counter-based stream (SplitMix64, `prior_kernel.uniform_params`), normal inits numpy's
  PCG64; either way one stream per block derived from (seed, block index): same seed, same counts,
  whatever the number of worker threads.

For two hidden layers on the Boolean cube with a uniform init (the classic 7-40-40-1 experiment) a
compiled C kernel (`prior_kernel`) does the whole block: the same stream, layer 1 by adding one
weight row per input bit, layer 2 register-blocked; 4-5x the batched-matmul program per block. Where
there is no C compiler the torch program computes the same draws.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..core.process import one_thread
from . import prior_kernel
from .complexity import lz_complexity

WORD = 64  # truth-table bits per packed int64 word
BLOCK = 512  # draws per block and worker: activations of 512 x 128 x 40 floats (10 MB) stay near the caches
MERGE_ROWS = 1 << 20  # distinct rows gathered from blocks before merging them into the running table


# -- inputs, architecture, init ----------------------------------------------------------------------
def boolean_inputs(n: int) -> torch.Tensor:
    """All 2^n inputs in {0,1}^n, (2^n, n) float32, in binary counting order (x_0 is the most significant bit)."""
    if not 1 <= n <= 16:
        raise ValueError(f"boolean:n needs 1 <= n <= 16, got {n}")
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))


@dataclass(frozen=True)
class Init:
    """A parameter distribution: per layer, weights ~ scale(fan_in, layer) * unit and biases ~ bias * that
    scale * unit, unit U(-1,1) or N(0,1).

    torch        PyTorch's nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
    uniform:a    U(-a, a) for every weight and bias; uniform:a1/a2/... one bound per layer (input layer first)
    he-uniform   U(+-sqrt(6/fan_in)) (He et al. 2015, uniform form) at every layer
    valle-perez  U(+-sqrt(6/fan_in)) in the hidden layers, U(+-sqrt(3/fan_in)) at the output: Valle-Perez et
                 al. 2019's published setup (docs/counting.md)
    kaiming      N(0, 2/fan_in) for weights and biases (He et al. 2015)
    lecun        N(0, 1/fan_in) for weights and biases
    Any of them with ",bias=F": the biases' scale is F times the weights' (default 1; 0: no biases).
    """

    name: str
    normal: bool
    a: float = 1.0
    layers: tuple[float, ...] | None = None  # uniform:a1/a2/...: one bound per layer
    bias: float = 1.0

    def scale(self, fan_in: int, layer: int = 0, n_layers: int = 1) -> float:
        if self.layers is not None:
            if len(self.layers) != n_layers:
                raise ValueError(f"init uniform:{'/'.join(map(str, self.layers))} gives {len(self.layers)} bounds for {n_layers} layers")
            return self.layers[layer]
        if self.name == "valle-perez":
            return math.sqrt((6 if layer < n_layers - 1 else 3) / fan_in)
        return {"torch": 1 / math.sqrt(fan_in), "uniform": self.a, "kaiming": math.sqrt(2 / fan_in), "lecun": math.sqrt(1 / fan_in),
                "he-uniform": math.sqrt(6 / fan_in)}[self.name]

    @classmethod
    def parse(cls, text: str) -> Init:
        base, _, rest = text.partition(",")
        bias = 1.0
        if rest:
            m = re.fullmatch(r"bias=([0-9.eE+-]+)", rest)
            try:
                bias = float(m.group(1)) if m else -1.0
            except ValueError:
                bias = -1.0
            if not (bias >= 0 and math.isfinite(bias)):
                raise ValueError(f"init {text!r}: expected NAME,bias=F with F >= 0")
        if base in ("torch", "kaiming", "lecun", "he-uniform", "valle-perez"):
            return cls(base, normal=base in ("kaiming", "lecun"), bias=bias)
        m = re.fullmatch(r"uniform:([0-9.eE+/-]+)", base)
        if m:
            try:
                bounds = [float(v) for v in m.group(1).split("/")]
            except ValueError:
                bounds = [-1.0]
            if all(a > 0 and math.isfinite(a) for a in bounds):
                return cls("uniform", normal=False, a=bounds[0], layers=tuple(bounds) if len(bounds) > 1 else None, bias=bias)
            raise ValueError(f"init {text!r}: uniform:a needs a positive number a (or a1/a2/..., one per layer)")
        raise ValueError(f"unknown init {text!r} (known: torch, uniform:a, uniform:a1/a2/..., he-uniform, valle-perez, kaiming, lecun; each with ,bias=F)")


# -- packing truth tables ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _pack_matrix(m: int) -> torch.Tensor:
    """(m, 4 * words) float32: bit i goes to 16-bit group i // 16 at weight 2^(15 - i % 16), exact in float32."""
    groups = 4 * math.ceil(m / WORD)
    p = torch.zeros(m, groups)
    i = torch.arange(m)
    p[i, i // 16] = 2.0 ** (15 - i % 16).float()
    return p


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(B, m) bool/0-1 -> (B, ceil(m/64)) int64; input 64w+k is bit 63-k of word w (two's complement)."""
    g = (bits.float() @ _pack_matrix(bits.shape[1])).to(torch.int64).view(len(bits), -1, 4)
    return (g[..., 0] << 48) | (g[..., 1] << 32) | (g[..., 2] << 16) | g[..., 3]


def to_hex(words: np.ndarray, m: int) -> list[str]:
    """Packed rows (F, words) int64 -> truth tables as hex, first input first (zero-padded to 4 bits)."""
    width, keep = 16 * words.shape[1], math.ceil(m / 4)
    text = np.ascontiguousarray(words).astype(">u8").tobytes().hex()  # big-endian: the first input leads
    return [text[i : i + keep] for i in range(0, len(text), width)]


def hex_bits(tables: list[str], m: int) -> np.ndarray:
    """Hex truth tables (all of one length) -> (F, m) uint8 bits."""
    if not len(tables):
        return np.zeros((0, m), np.uint8)
    even = [t + "0" * (len(t) % 2) for t in tables]
    raw = np.frombuffer(bytes.fromhex("".join(even)), np.uint8).reshape(len(tables), -1)
    return np.unpackbits(raw, axis=1)[:, :m]


def from_hex(text: str, m: int) -> np.ndarray:
    """A hex truth table -> (m,) uint8 bits."""
    return hex_bits([text], m)[0]


def _unique_rows(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum `counts` over equal rows of `keys` (F, words) int64."""
    if keys.shape[1] == 1:
        u, inv = np.unique(keys[:, 0], return_inverse=True)
        return u[:, None], np.bincount(inv, weights=counts).astype(np.int64)
    void = np.ascontiguousarray(keys).view(np.dtype((np.void, 8 * keys.shape[1]))).ravel()
    u, inv = np.unique(void, return_inverse=True)
    return u.view(np.int64).reshape(-1, keys.shape[1]), np.bincount(inv.ravel(), weights=counts).astype(np.int64)


class FunctionCounter:
    """A streaming count of packed truth tables: add blocks, read the merged table."""

    def __init__(self, words: int):
        self.keys = np.zeros((0, words), np.int64)
        self.counts = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    def add(self, packed: torch.Tensor) -> None:
        self.add_unique(*_unique_rows(packed.numpy(), np.ones(len(packed))))

    def add_unique(self, u: np.ndarray, c: np.ndarray) -> None:
        """Add distinct rows u (F, words) with their counts c (F,)."""
        self._pending.append((u, c))
        self._pending_rows += len(u)
        # merge when the pending rows outnumber the table: amortised O(rows log rows) overall
        if self._pending_rows > max(MERGE_ROWS, len(self.keys)):
            self._merge()

    def _merge(self) -> None:
        if self._pending:
            keys = np.concatenate([self.keys] + [k for k, _ in self._pending])
            counts = np.concatenate([self.counts] + [c for _, c in self._pending])
            self.keys, self.counts = _unique_rows(keys, counts.astype(np.float64))
            self._pending, self._pending_rows = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._merge()
        return self.keys, self.counts


# -- the sampler -------------------------------------------------------------------------------------
def _draw_block(rng: np.random.Generator, shapes: list[tuple[int, int]], b: int) -> list[np.ndarray]:
    """Unit-normal parameters for b draws: [W_1, b_1, ..., W_out, b_out], W_l (b, fan_in, fan_out), b_l (b, 1, fan_out)."""
    out = []
    for fan_in, fan_out in shapes:
        for shape in ((b, fan_in, fan_out), (b, 1, fan_out)):
            a = np.empty(shape, np.float32)
            rng.standard_normal(out=a, dtype=np.float32)
            out.append(a)
    return out


def random_net_signs(params: list[torch.Tensor], x: torch.Tensor, bias_scale: list[float]) -> torch.Tensor:
    """Output bits [logit > 0] of B random ReLU MLPs on shared inputs x (M, n): (B, M) bool.

    params: [W_1, b_1, ..., W_out, b_out] with the draw axis first and unit-scale values; bias_scale[l]
    is the factor that makes layer l's bias consistent with the unscaled weights before it."""
    depth = len(params) // 2 - 1
    h_act = x.expand(len(params[0]), -1, -1)  # (B, M, n): the inputs are shared, not copied
    for l in range(depth):
        h_act = torch.baddbmm(params[2 * l + 1] * bias_scale[l], h_act, params[2 * l]).relu_()  # (B, M, h_l)
    w_out, b_out = params[-2], params[-1]  # (B, h, 1), (B, 1, 1)
    # (1 x h) @ (h x M) per draw: measured 1.7x faster than (M x h) @ (h x 1) on the same data
    logits = torch.baddbmm(b_out * bias_scale[-1], w_out.transpose(1, 2), h_act.transpose(1, 2))  # (B, 1, M)
    return logits.squeeze(1) > 0


def _collect(pending: dict, counter: FunctionCounter, sizes: list[int], done: int, progress) -> int:
    """Merge the oldest pending block into the counter (in block order: the result is deterministic)."""
    k = min(pending)
    counter.add_unique(*pending.pop(k).result())
    done += sizes[k]
    if progress:
        progress(done)
    return done


def sample_functions(
    x: torch.Tensor,
    widths: list[int],
    samples: int,
    init: Init | str = "torch",
    seed: int = 0,
    block: int = BLOCK,
    complexity_for: int | None = 100_000,
    progress=None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Sample `samples` random MLPs (hidden widths `widths`, one output) on inputs x (M, n) and count functions.

    Returns one row per distinct function, most frequent first: `function` (hex truth table), `count`,
    `frequency` (count / samples) and `complexity` (LZ, `lz_complexity` of the truth table) for the
    `complexity_for` most frequent functions (None: all; the rest get NaN, as LZ costs ~0.1 ms each).
    `progress(n)` is called after each block with the number of draws done; `workers` threads compute
    blocks (default: torch's thread count)."""
    init = Init.parse(init) if isinstance(init, str) else init
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if any(w < 1 for w in widths):
        raise ValueError(f"hidden widths must be positive, got {widths}")  # [] is allowed: a linear threshold unit
    x = x.float()
    m, n = x.shape
    dims = [n, *widths, 1]
    shapes = list(itertools.pairwise(dims))
    scales = [init.scale(fan_in, l, len(shapes)) for l, (fan_in, _) in enumerate(shapes)]
    # bias of layer l sees activations scaled by the product of the earlier layers' scales (see module doc)
    bias_scale = [init.bias / math.prod(scales[:l]) for l in range(len(shapes))]
    counter = FunctionCounter(math.ceil(m / WORD))
    sizes = [min(block, samples - i) for i in range(0, samples, block)]
    workers = workers or torch.get_num_threads()

    cube = m == 1 << n and torch.equal(x, boolean_inputs(n)) if n <= 16 else False
    # the kernel's first layer adds biases at unit scale: only an init whose biases match its weights
    fast = not init.normal and init.bias == 1 and cube and prior_kernel.supports(n, widths) and prior_kernel.load() is not None

    def run_block(k: int) -> tuple[np.ndarray, np.ndarray]:
        # block k has its own stream, so the counts do not depend on the number of workers or their timing
        if fast:
            packed = prior_kernel.sample_block(prior_kernel.block_key(seed, k), sizes[k], n, widths[0], widths[1], bias_scale[1], bias_scale[2])
            return _unique_rows(packed, np.ones(sizes[k]))
        if init.normal:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, k])))
            arrays = _draw_block(rng, shapes, sizes[k])
        else:
            arrays = prior_kernel.uniform_params(prior_kernel.block_key(seed, k), sizes[k], shapes)
        params = [torch.from_numpy(a) for a in arrays]
        return _unique_rows(pack_bits(random_net_signs(params, x, bias_scale)).numpy(), np.ones(sizes[k]))

    # Python threads, each running single-threaded torch ops (they release the GIL): on the shared 2-core
    # machine this was 2x faster than one thread with 2 OpenMP threads, whose many small elementwise ops
    # scale badly across threads; the intra-op thread count is restored afterwards.
    with one_thread(), ThreadPoolExecutor(workers) as pool:
        pending, done = {}, 0
        for k in range(len(sizes)):
            pending[k] = pool.submit(run_block, k)
            if len(pending) >= 2 * workers:  # a bounded window: memory stays a few blocks
                done = _collect(pending, counter, sizes, done, progress)
        while pending:
            done = _collect(pending, counter, sizes, done, progress)
    keys, counts = counter.result()
    order = np.lexsort((np.arange(len(counts)), -counts))  # by count, ties in table order: deterministic
    keys, counts = keys[order], counts[order]
    table = to_hex(keys, m)
    k = len(table) if complexity_for is None else min(complexity_for, len(table))
    complexity = np.full(len(table), np.nan)
    complexity[:k] = [lz_complexity(function_bits(t, m)) for t in table[:k]]
    return pd.DataFrame({"function": table, "count": counts, "frequency": counts / samples, "complexity": complexity})


def function_bits(table: str, m: int) -> str:
    """A hex truth table as its '0'/'1' string over m inputs."""
    return bin(int(table, 16))[2:].zfill(4 * len(table))[:m]


def complexity_correlation(functions: pd.DataFrame, min_count: int = 1) -> dict[str, float]:
    """Spearman and Pearson correlation of log10 frequency with LZ complexity over the functions that have one
    and were seen at least `min_count` times (Valle-Perez et al. 2019 correlate over functions seen often
    enough that their frequency is an estimate, not a single draw's 1/N)."""
    from scipy import stats

    f = functions.dropna(subset=["complexity"])
    f = f[f["count"] >= min_count]
    logf = np.log10(f.frequency.to_numpy())
    if len(f) < 3 or np.ptp(logf) == 0 or np.ptp(f.complexity) == 0:
        return {"spearman": float("nan"), "pearson": float("nan"), "n_functions": len(f)}
    return {
        "spearman": float(stats.spearmanr(logf, f.complexity).statistic),
        "pearson": float(stats.pearsonr(logf, f.complexity).statistic),
        "n_functions": len(f),
    }
