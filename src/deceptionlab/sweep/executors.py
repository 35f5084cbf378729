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

import functools
import hashlib
import multiprocessing as mp
import os
import signal
import socket
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

MAX_ATTEMPTS = 3  # tries per chunk when its worker dies under it
WORTH_A_PROCESS = 60.0  # seconds of estimated work per extra worker process (each costs seconds to start: BENCHMARKS.md)

Chunk = list  # a list of runs of one condition; executors never look inside
Work = Callable[..., Any]  # work(chunk, device, on_fraction=None) -> result, a module-level function


class ExecutorError(RuntimeError):
    """An executor problem (bad options, unreachable cluster, a chunk that keeps killing its worker), one line."""


@dataclass
class Progress:
    """Callbacks for a progress display: `start(total_runs)`, `advance(runs)` (fractional, negative when a
    lost chunk's progress is taken back), `message(line)`."""

    start: Callable[[int], None] = lambda n: None
    advance: Callable[[float], None] = lambda n: None
    message: Callable[[str], None] = print


def default_workers(n_chunks: int, seconds: float, device: str = "cpu") -> int:
    """Worker processes when none are asked for, given the chunks' estimated `seconds` in one process: one
    per core, but no more than there are chunks, nor than the work pays for (1: in this process)."""
    if device != "cpu":
        return 1
    return max(1, min(os.cpu_count() or 1, n_chunks, int(seconds // WORTH_A_PROCESS)))


def _lost(chunk: Chunk, attempt: int, why: str) -> str:
    return f"a chunk of {len(chunk)} runs lost its worker ({why}) {attempt} times; the finished chunks are stored, re-run to resume"


# -- local: this process, or a pool of spawned worker processes ------------------------------------------


@dataclass
class Local:
    """Chunks on this machine: in this process (1 worker), or in `workers` spawned processes, each with
    an equal share of the torch threads (so that together they do not oversubscribe the cores)."""

    workers: int | None = None
    """Worker processes (None: `run_experiment` picks with `default_workers`; 1: this process)."""

    def run(self, chunks: list[Chunk], work: Work, device: str = "cpu", progress: Progress | None = None) -> Iterator[tuple[Chunk, Any]]:
        progress = progress or Progress()
        workers = self.workers or 1
        if workers <= 1 or len(chunks) <= 1 or device != "cpu":
            for chunk in chunks:
                yield chunk, work(chunk, device, on_fraction=lambda f, n=len(chunk): progress.advance(f * n))
            return
        yield from _Pool(chunks, work, device, workers, progress).run()


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection  # the driver's end of a pipe only this worker writes to: a killed worker wedges no one else
    key: int | None = None  # the chunk it is training


def _worker_main(conn: Connection, work: Work, device: str, threads: int) -> None:
    """A worker process: train the chunks the driver sends, one at a time, until told to stop (None)."""
    torch.set_num_threads(threads)
    try:
        while (task := conn.recv()) is not None:
            key, chunk = task
            try:
                result = work(chunk, device, on_fraction=lambda f: conn.send(("progress", key, f)))
            except (BrokenPipeError, KeyboardInterrupt):
                raise
            except Exception as e:  # a bug or a bad chunk: the driver raises it
                conn.send(("failed", key, _picklable(e), traceback.format_exc()))
                return
            conn.send(("done", key, result))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):  # the driver is gone or interrupted: stop quietly
        pass


def _picklable(e: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return RuntimeError(f"{type(e).__name__}: {e}")


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


@dataclass
class _Pool:
    """Worker processes fed one chunk at a time over their own pipes; a dead worker's chunk is sent again."""

    chunks: list[Chunk]
    work: Work
    device: str
    workers: int
    progress: Progress
    todo: deque = field(default_factory=deque)  # keys of chunks waiting for a worker
    attempts: dict = field(default_factory=dict)  # key -> tries so far
    shown: dict = field(default_factory=dict)  # key -> runs of progress shown, taken back if the chunk is lost
    pool: list = field(default_factory=list)

    def run(self) -> Iterator[tuple[Chunk, Any]]:
        self.todo.extend(range(len(self.chunks)))
        ctx = mp.get_context("spawn")
        threads = max(1, torch.get_num_threads() // self.workers)
        remaining = len(self.chunks)
        try:
            while remaining:
                busy = sum(w.key is not None for w in self.pool)
                while len(self.pool) < min(self.workers, busy + len(self.todo)):
                    self.pool.append(self._start(ctx, threads))
                for w in self.pool:
                    if w.key is None and self.todo:
                        w.key = self.todo.popleft()
                        self.attempts[w.key] = self.attempts.get(w.key, 0) + 1
                        w.conn.send((w.key, self.chunks[w.key]))
                wait([w.conn for w in self.pool] + [w.process.sentinel for w in self.pool])
                for w in list(self.pool):
                    for key, result in self._receive(w):
                        remaining -= 1
                        yield self.chunks[key], result
                    if not w.process.is_alive():
                        self._bury(w)
        finally:
            for w in self.pool:
                _stop(w)

    def _start(self, ctx, threads: int) -> _Worker:
        mine, theirs = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(theirs, self.work, self.device, threads), daemon=True)
        process.start()
        theirs.close()  # only the worker holds its end now, so its death reads as end-of-file here
        return _Worker(process, mine)

    def _receive(self, w: _Worker) -> Iterator[tuple[int, Any]]:
        """Everything `w` has sent: progress is shown, finished chunks are handed on, errors raised."""
        while w.conn.poll():
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):  # dead, possibly mid-message: `_bury` takes it from here
                return
            kind, key = msg[0], msg[1]
            if kind == "progress":
                runs = msg[2] * len(self.chunks[key])
                self.shown[key] = self.shown.get(key, 0.0) + runs
                self.progress.advance(runs)
            elif kind == "done":
                w.key = None
                self.shown.pop(key, None)
                yield key, msg[2]
            else:
                error, remote_tb = msg[2], msg[3]
                error.add_note(f"raised in worker process {w.process.pid}:\n{remote_tb}")
                raise error

    def _bury(self, w: _Worker) -> None:
        """A worker died: drop it; its chunk, if it held one, goes back in the queue (or the sweep stops)."""
        self.pool.remove(w)
        w.conn.close()
        key = w.key
        if key is None:
            return
        why = _exit_reason(w.process.exitcode)
        chunk = self.chunks[key]
        if self.attempts[key] >= MAX_ATTEMPTS:
            raise ExecutorError(_lost(chunk, self.attempts[key], why))
        self.progress.advance(-self.shown.pop(key, 0.0))
        self.progress.message(
            f"warning: a worker process died mid-chunk ({why}); its {len(chunk)} runs are trained again "
            f"(attempt {self.attempts[key] + 1} of {MAX_ATTEMPTS})"
        )
        self.todo.appendleft(key)


def _stop(w: _Worker) -> None:
    """Idle workers are told to stop; a busy one (the sweep failed or was interrupted) is terminated."""
    try:
        if w.key is None and w.process.is_alive():
            w.conn.send(None)
            w.process.join(5)
    except OSError:
        pass
    if w.process.is_alive():
        w.process.terminate()
        w.process.join(5)
    w.conn.close()


# -- Ray: one task per chunk on a cluster -----------------------------------------------------------------


@functools.cache
def code_fingerprint() -> str:
    """A hash of the lab's source files: run ids name what a run computes, so every node must run this code."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes())
    return digest.hexdigest()[:12]


class CodeMismatch(RuntimeError):
    """A node runs other code than the driver."""


def _train_on_ray(work: Work, chunk: Chunk, device: str, fingerprint: str) -> Any:
    """A Ray task: one chunk on one CPU of some node (a Ray task reserves one CPU: one torch thread)."""
    if code_fingerprint() != fingerprint:
        raise CodeMismatch(f"node {socket.gethostname()} runs other deceptionlab code ({Path(__file__).parents[1]}, {code_fingerprint()})")
    torch.set_num_threads(1)
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
        try:
            while refs:
                (ref,), _ = ray.wait(list(refs), num_returns=1)
                chunk = chunks[refs.pop(ref)]
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    raise _task_error(e) from None
                except ray.exceptions.RayError as e:  # its worker or node died on every try
                    raise ExecutorError(_lost(chunk, MAX_ATTEMPTS, type(e).__name__)) from None
                progress.advance(len(chunk))
                yield chunk, result
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
            ray.shutdown()

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
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"Ray address {address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379, as `ray start --head` prints)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ExecutorError(f"no Ray cluster at {address}: {e.strerror or e} (start one with `ray start --head`, see docs/cluster.md)") from None


# -- choosing one ----------------------------------------------------------------------------------------

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
