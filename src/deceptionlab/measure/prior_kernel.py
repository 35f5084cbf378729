"""The compiled kernel of function sampling, and the numpy twin of its random stream.

`_prior_kernel.c` samples two-hidden-layer ReLU MLPs on the Boolean cube and packs their truth
tables; it is compiled with the system C compiler on first use (cached per source and CPU in
`$XDG_CACHE_HOME/deceptionlab`, default `~/.cache/deceptionlab`) and loaded with ctypes. Without a
compiler, or with DECEPTIONLAB_NO_KERNEL=1, `load()` returns None and `measure/prior.py` computes the
same draws with torch (`uniform_params` is the kernel's random stream in numpy, number for number).
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import numpy as np

from ..core.native import compiled

SOURCE = Path(__file__).with_name("_prior_kernel.c")
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
FLAGS = ["-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC"]


def block_key(seed: int, block: int) -> int:
    """The 64-bit key of one block's stream: blocks are independent, whatever the number of workers."""
    return int(np.random.SeedSequence([seed, block]).generate_state(1, np.uint64)[0])


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform_params(key: int, draws: int, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """U[-1, 1) parameters [W_1, b_1, ..., W_out, b_out] (W_l (draws, fan_in, fan_out), b_l (draws, 1, fan_out)),
    each draw's numbers in that order from the kernel's stream: SplitMix64 of key + c * golden for
    counters c = 1, 2, ..., two 24-bit uniforms per output (high bits first), a draw starting on a
    fresh output."""
    per = sum(i * o + o for i, o in shapes)
    half = (per + 1) // 2
    with np.errstate(over="ignore"):
        c = np.arange(1, draws * half + 1, dtype=np.uint64)
        z = _splitmix(np.uint64(key) + c * GOLDEN)
    pairs = np.stack([(z >> np.uint64(40)), (z >> np.uint64(8)) & np.uint64(0xFFFFFF)], 1).astype(np.float32)
    u = (pairs * np.float32(1 / 8388608) - np.float32(1)).reshape(draws, 2 * half)[:, :per]
    out, at = [], 0
    for fan_in, fan_out in shapes:
        for shape in ((fan_in, fan_out), (1, fan_out)):
            size = shape[0] * shape[1]
            out.append(np.ascontiguousarray(u[:, at : at + size]).reshape(draws, *shape))
            at += size
    return out


@functools.lru_cache(maxsize=1)
def load():
    """The compiled `sample_block`, or None when it cannot be had (no compiler, disabled, build failed)."""
    if os.environ.get("DECEPTIONLAB_NO_KERNEL"):
        return None
    lib = compiled(SOURCE, "prior_kernel", [FLAGS])
    if lib is None:
        return None
    fn = ctypes.CDLL(str(lib)).sample_block
    fn.argtypes = [ctypes.c_uint64, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_float, ctypes.c_float, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


def sample_block(key: int, draws: int, n: int, h1: int, h2: int, bs1: float, bs2: float) -> np.ndarray:
    """Packed truth tables (draws, 2^n / 64) int64 of `draws` n-h1-h2-1 ReLU MLPs on the Boolean cube
    (the kernel must be available: `load()` is not None)."""
    out = np.empty((draws, (1 << n) // 64), np.int64)
    if load()(key, draws, n, h1, h2, bs1, bs2, out.ctypes.data) != 0:
        raise MemoryError("prior kernel: out of memory")
    return out


def supports(n: int, widths: list[int]) -> bool:
    """Whether the kernel computes this architecture: two hidden layers, the second a multiple of 4 wide,
    at least 64 inputs (a whole packed word)."""
    return len(widths) == 2 and widths[1] % 4 == 0 and 6 <= n <= 16
