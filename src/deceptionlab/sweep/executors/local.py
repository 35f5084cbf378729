"""Chunks on this machine: in this process, or in worker processes that each train one chunk at a time.

Each worker has its own pipe to the driver (a killed worker can wedge no queue shared with others) and
an equal share of the torch threads. A worker that dies mid-chunk is buried and its chunk sent again,
up to MAX_ATTEMPTS times in all. A worker whose driver is gone stops at its next progress report.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Iterator

import torch

from ...core.process import tune_process
from .base import MAX_ATTEMPTS, Chunk, ExecutorError, Progress, Work, lost

WORTH_A_PROCESS = 60.0  # seconds of estimated work per extra worker process (each costs seconds to start: BENCHMARKS.md)


def default_workers(n_chunks: int, seconds: float, device: str = "cpu") -> int:
    """Worker processes when none are asked for, given the chunks' estimated `seconds` in one process: one
    per core, but no more than there are chunks, nor than the work pays for (1: in this process)."""
    if device != "cpu":
        return 1
    return max(1, min(os.cpu_count() or 1, n_chunks, int(seconds // WORTH_A_PROCESS)))


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
    tune_process(threads)  # this worker process is the executor's own
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
            raise ExecutorError(lost(chunk, self.attempts[key], why))
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
