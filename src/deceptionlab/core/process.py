"""Settings of a whole process, applied only by what owns the process: the command line (`cli.main`), the
executors' worker processes and the benchmarks. Library calls never change them."""

from __future__ import annotations

import ctypes
from contextlib import contextmanager

_tuned = {"allocator": False}


def keep_freed_memory() -> None:
    """Ask glibc to reuse freed blocks instead of returning them to the OS: each training step frees and
    reallocates the same multi-megabyte activations, and with the default thresholds each reallocation
    page-faults afresh (measured: 15 -> 21 runs/s on bitworld). Linux/glibc only; once per process."""
    if _tuned["allocator"]:
        return
    _tuned["allocator"] = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD, glibc's maximum
    except (OSError, AttributeError):
        pass


def tune_process(threads: int | None = None) -> None:
    """What a process the lab owns sets once: the allocator (keep_freed_memory) and, when given, torch's
    intra-op threads."""
    keep_freed_memory()
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@contextmanager
def one_thread():
    """Run torch single-threaded for one call, then restore the thread count: for many small batched ops
    (64 x 64 eighs of the detectors, the counting sampler) whose OpenMP regions cost more than they share
    out (measured: 1,000 batched eighs 25 s on 2 threads, 0.26 s on one). Caveat: setting the thread count
    also turns MKL's dynamic threading off for the rest of the process, after which MKL's batched LU
    (`torch.linalg.solve`, n >= about 200) hangs; the lab solves its probes by Cholesky
    (core.linalg.spd_solve) and keeps this out of the training path."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
