"""Chunks as Ray tasks on a cluster: one task per chunk, on one CPU, results back to the driver.

Ray retries a task whose worker or node dies (up to MAX_ATTEMPTS tries in all). Every task checks that
its node runs the driver's code: run ids name what a run computes, not which code computed it.
The driver watches the cluster's head (its GCS port) while it waits: a head that stops answering for
HEAD_GRACE seconds ends the sweep with one line, the chunks stored until then kept (Ray itself would hang
for a minute and then end the process with a log line of its own). Ray is imported only when a sweep uses it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ...core.process import tune_process
from .base import MAX_ATTEMPTS, Chunk, ExecutorError, Progress, Work, lost

HEAD_GRACE = 5.0  # seconds the head may not answer before the sweep stops (a head restart takes longer)
POLL = 1.0  # seconds between looks at the head while no chunk comes back


@functools.cache
def code_fingerprint() -> str:
    """A hash of the lab's source files: run ids name what a run computes, so every node must run this code."""
    package = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:12]


class CodeMismatch(RuntimeError):
    """A node runs other code than the driver."""


def _train_on_ray(work: Work, chunk: Chunk, device: str, fingerprint: str) -> Any:
    """A Ray task: one chunk on one CPU of some node (a Ray task reserves one CPU: one torch thread)."""
    if code_fingerprint() != fingerprint:
        raise CodeMismatch(f"node {socket.gethostname()} runs other deceptionlab code ({Path(__file__).parents[2]}, {code_fingerprint()})")
    tune_process(1)  # a Ray task reserves one CPU: one torch thread
    return work(chunk, device)


@dataclass
class RayCluster:
    """Chunks as Ray tasks on a cluster at `address` (else $RAY_ADDRESS; else a Ray instance started here
    with one CPU per core). Each task trains one chunk on one CPU; a task whose worker or node dies is
    retried by Ray. Results come back to this process, which stores them: workers need no shared disk.
    Every node must run the same code as this process (checked per task)."""

    address: str | None = None

    def __post_init__(self) -> None:
        self.address = self.address or os.environ.get("RAY_ADDRESS") or None
        _import_ray()
        if self.address:
            _check_reachable(self.address)

    def run(self, chunks: list[Chunk], work: Work, device: str = "cpu", progress: Progress | None = None) -> Iterator[tuple[Chunk, Any]]:
        if not chunks:
            return
        progress = progress or Progress()
        ray = _import_ray()
        self._connect(ray)
        task = ray.remote(_train_on_ray).options(num_cpus=1, max_retries=MAX_ATTEMPTS - 1, retry_exceptions=False)
        refs = {task.remote(work, chunk, device, code_fingerprint()): key for key, chunk in enumerate(chunks)}
        head = _Head(self.address or ray.get_runtime_context().gcs_address)
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL)
                if not ready:
                    head.check()
                    continue
                (ref,) = ready
                chunk = chunks[refs.pop(ref)]
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    raise _task_error(e) from None
                except ray.exceptions.RayError as e:  # its worker or node died on every try
                    raise ExecutorError(lost(chunk, MAX_ATTEMPTS, type(e).__name__)) from None
                progress.advance(len(chunk))
                yield chunk, result
        finally:
            if not head.lost:  # a cancel would wait for the dead head
                for ref in refs:
                    ray.cancel(ref, force=True)
            ray.shutdown()  # without the head it gives up after about 5 s

    def _connect(self, ray) -> None:
        quiet = dict(logging_level="ERROR", log_to_driver=False)
        try:
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
        except Exception as e:  # Ray's own message, first line: version mismatch, refused, ...
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            raise ExecutorError(f"cannot start or reach {where}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None


class _Head:
    """The cluster head's GCS port, looked at while the driver waits: `check` raises ExecutorError once the
    head has not accepted a connection for HEAD_GRACE seconds (one refused connection is not yet a loss)."""

    def __init__(self, gcs_address: str) -> None:
        host, port = _host_port(gcs_address)
        self.address, self.where = (host, int(port)), gcs_address
        self.silent_since: float | None = None
        self.lost = False

    def check(self) -> None:
        try:
            socket.create_connection(self.address, timeout=POLL).close()
            self.silent_since = None
            return
        except OSError:
            now = time.monotonic()
            self.silent_since = self.silent_since or now
            if now - self.silent_since < HEAD_GRACE:
                return
        self.lost = True
        raise ExecutorError(f"the Ray cluster's head at {self.where} stopped answering; the chunks stored until now are kept: "
                            "start the cluster again and run the same command to resume")


def _task_error(e) -> Exception:
    """A failed task as this process would have failed: the chunk's own error; or one line when the node
    cannot run this code at all (another version installed, or none)."""
    cause = e.cause
    if isinstance(cause, CodeMismatch):
        return ExecutorError(f"{cause}, not this driver's ({code_fingerprint()}): install the same deceptionlab on every node (docs/cluster.md)")
    if "failed to import" in str(cause) or isinstance(cause, ImportError):
        missing = str(cause).strip().splitlines()[-1]
        return ExecutorError(f"a Ray worker cannot import the lab ({missing}): install the same deceptionlab on every node (docs/cluster.md)")
    return e.as_instanceof_cause()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs the ray package here and on every node (pip install ray)") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail at once, with one line, on an address nothing listens at (Ray itself retries for minutes)."""
    host, port = _host_port(address)
    if not host or not port.isdigit():
        raise ExecutorError(f"Ray address {address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379, as `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"no Ray cluster at {address}: {e.strerror or e} (start one with `ray start --head`, see docs/cluster.md)") from None


def _host_port(address: str) -> tuple[str, str]:
    """("10.0.0.1", "6379") of "10.0.0.1:6379", "ray://10.0.0.1:6379/" or "[::1]:6379"."""
    host, _, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    return host.strip("[]"), port
