"""Drawing the report's figures: each figure is a call that saves its files (PNG and SVG), skipped
when the same figure was drawn before from the same inputs.

matplotlib draws one figure at about 50 ms a panel and format; the report draws a dozen figures of up
to 36 panels, twice each, so not drawing again what did not change is what brings a report written
again under its time. (Drawing in worker processes forked from the report's was tried and dropped:
a fork taken after torch's and the prior sampler's threads ran deadlocked in one run of three.)

A figure's stamp (`.drawn/<name>.json` beside its files) holds the digest of its inputs (every column
of every frame it is drawn from, its other arguments), of the drawing code (the report and measure
packages' source) and matplotlib's version; the figure is drawn again when any of them changes or a
file is missing. `$DECEPTIONLAB_NO_CACHE` (any value) draws every figure again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..core.memo import feed_frame, source_digest


@dataclass
class Job:
    """One figure: its name, the call that draws it (returns the files it wrote), the folder it writes
    into and everything it is drawn from (frames, dicts, numbers, strings)."""

    name: str
    call: Callable[[], list[Path]]
    folder: Path
    inputs: tuple = field(default_factory=tuple)


def _feed(h, value, memo: dict | None = None) -> None:
    if isinstance(value, pd.DataFrame):
        if memo is not None and id(value) in memo:  # the same frame in several figures: digested once
            h.update(memo[id(value)])
            return
        sub = hashlib.sha256()
        feed_frame(sub, value)
        if memo is not None:
            memo[id(value)] = sub.digest()
        h.update(sub.digest())
    elif isinstance(value, dict):
        for k in sorted(value, key=str):
            h.update(str(k).encode())
            _feed(h, value[k], memo)
    elif isinstance(value, (list, tuple)):
        h.update(f"[{len(value)}".encode())
        for v in value:
            _feed(h, v, memo)
    else:
        h.update(repr(value).encode())


def digest(job: Job, memo: dict | None = None) -> str:
    """The digest of what `job`'s figure shows: its name, inputs and the drawing code."""
    h = hashlib.sha256(job.name.encode())
    import matplotlib

    h.update(source_digest(("report", "measure", "core")).encode() + matplotlib.__version__.encode())
    _feed(h, job.inputs, memo)
    return h.hexdigest()


def _stamp(job: Job) -> Path:
    return job.folder / ".drawn" / f"{job.name}.json"


def _fresh(job: Job, key: str) -> list[Path] | None:
    """The files of `job` if they were drawn from the same inputs and are all there, else None."""
    try:
        stamp = json.loads(_stamp(job).read_text())
    except (OSError, ValueError):
        return None
    files = [job.folder / f for f in stamp.get("files", [])]
    return files if stamp.get("key") == key and files and all(f.exists() for f in files) else None


def draw(jobs: list[Job]) -> dict[str, list[Path]]:
    """Draw every figure of `jobs` whose files are not already drawn from the same inputs; {name: files}."""
    memo: dict = {}
    reuse = not os.environ.get("DECEPTIONLAB_NO_CACHE")
    out = {}
    for job in jobs:
        key = digest(job, memo)
        files = _fresh(job, key) if reuse else None
        if files is None:
            files = [Path(f) for f in job.call()]
            stamp = _stamp(job)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"key": key, "files": [os.path.relpath(f, job.folder) for f in files]}))
        out[job.name] = files
    return out
