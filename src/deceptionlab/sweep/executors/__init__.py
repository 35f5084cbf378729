"""Where chunks run: in this process, in local worker processes, or on a Ray cluster.

A chunk (an ensemble of many runs of one condition) is the unit of work everywhere, never one run.
An executor hands each chunk to `work(chunk, device, on_fraction)` and yields (chunk, result) as
each finishes, in whatever order; the driver writes the results, so no worker needs the results
folder. Results do not depend on where or in what order a chunk ran: every run draws its randomness
from its own seeds.

A worker that dies mid-chunk (killed, out of memory) costs only the chunk it held: the chunk runs
again, up to MAX_ATTEMPTS times in all; then the sweep stops with an ExecutorError (the chunks
finished until then are stored, and a re-run resumes).
"""

from __future__ import annotations

from .base import MAX_ATTEMPTS, ExecutorError, Progress
from .local import Local, default_workers
from .ray_cluster import RayCluster

EXECUTORS = ("local", "ray")


def executor_for(name: str = "local", workers: int | None = None, address: str | None = None) -> Local | RayCluster:
    """The executor named (local, ray) with its options checked; ExecutorError with one line otherwise."""
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r} (executors: {', '.join(EXECUTORS)})")
    if workers is not None and workers < 1:
        raise ExecutorError(f"--workers {workers}: must be at least 1")
    if name == "local":
        if address:
            raise ExecutorError("--address is for the Ray executor: add --executor ray")
        return Local(workers)
    if workers is not None:
        raise ExecutorError("--workers is for the local executor: Ray runs one chunk per CPU of the cluster")
    return RayCluster(address)


__all__ = ["EXECUTORS", "MAX_ATTEMPTS", "ExecutorError", "Local", "Progress", "RayCluster", "default_workers", "executor_for"]
