"""What every executor shares: progress callbacks, the one-line error, how often a lost chunk is retried."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

MAX_ATTEMPTS = 3  # tries per chunk when its worker dies under it

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


def lost(chunk: Chunk, attempts: int, why: str) -> str:
    return f"a chunk of {len(chunk)} runs lost its worker ({why}) {attempts} times; the finished chunks are stored, re-run to resume"
