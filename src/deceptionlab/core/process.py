"""Settings of a whole process, applied only by what owns the process: the command line (`cli.main`), the
executors' worker processes and the benchmarks. Library calls never change them."""

from __future__ import annotations

import ctypes

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
