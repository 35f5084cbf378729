"""Executing an experiment: pending runs are cut into chunks, each chunk is one batched ensemble.

A chunk holds runs of one condition (same architecture and curriculum, different seeds), is trained
as one tensor program, scored, and written as one Parquet file. Chunks are sized to a memory budget.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
import torch

from ..families import get_family
from ..measure import class_scores, verdicts
from ..measure.verdicts import TOLERANCE
from ..worlds import CLASSES, World, get_world
from .spec import Condition, ExperimentSpec, Run, RunConfig, expand
from .store import Store

MAX_CHUNK = 1024  # beyond this, batched matmuls gain nothing more on a CPU
DEFAULT_MEMORY = 1 << 30  # bytes a chunk may use


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose ("init", "data") of one run, independent across purposes."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8], "little") >> 1


def generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, purpose))


def build_world(config: RunConfig) -> World:
    world = get_world(config.world.name)(config.world.knobs)
    world.check()
    return world


def chunk_size_for(config: RunConfig, world: World, memory: int = DEFAULT_MEMORY) -> int:
    """Members per chunk so that parameters, optimiser state, activations and evaluation fit `memory`."""
    d, w = config.model.depth, config.model.width
    n_params = world.input_dim * w + (d - 1) * w * w + w * len(world.heads) + (d + 1) * w
    rows = len(world.heads) * config.optimizer.batch_size
    n_eval = sum(len(c.x) for c in world.probe_cells) + len(world.datasets[world.fit_dataset].x)
    n_eval += sum(len(x.x) for x in world.decodables.values())
    floats = 5 * n_params + 4 * rows * (w * d + world.input_dim) + 2 * n_eval * (w + len(CLASSES))
    return max(1, min(MAX_CHUNK, memory // (4 * floats)))


@dataclass
class Progress:
    """Callbacks for a progress display: `start(total_runs)`, `advance(runs)` (fractional)."""

    start: Callable[[int], None] = lambda n: None
    advance: Callable[[float], None] = lambda n: None
    message: Callable[[str], None] = print


def train_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> tuple[pa.Table, pa.Table | None]:
    """Train one chunk of runs of the same condition with their world's model family; return their
    result rows, and their final weights when the config asks for them."""
    cfg = runs[0].condition.config
    world = build_world(cfg)
    res = get_family(world.family).train_chunk(world, cfg, runs, device, on_fraction)
    weights = None
    if res.weights is not None:
        flat = res.weights.numpy()
        weights = pa.table({"run_id": [r.run_id for r in runs], "weights": [row.tobytes() for row in flat]})
    return rows_table(runs, world, res.evaluator, res.trajectory, cfg.normalised()), weights


def rows_table(runs: list[Run], world: World, evaluator, traj, norm: dict) -> pa.Table:
    cfg = runs[0].condition.config
    st = traj.stacked()
    agreement = st["agreement"]  # (N, T, cells, classes)
    scores = class_scores(agreement, evaluator.discriminating)  # (N, T, classes)
    acc = st["train_accuracy"]  # (N, T)
    th, fit_th = cfg.verdict.threshold, cfg.verdict.fit_threshold
    T = len(traj.steps)
    traj_verdicts = [verdicts(scores[:, t], acc[:, t], th, fit_th) for t in range(T)]
    final = traj_verdicts[-1]
    n = len(runs)
    cols: dict[str, list] = {"run_id": [r.run_id for r in runs]}
    cols["condition"] = [r.condition.label for r in runs]
    for axis, value in runs[0].condition.axes.items():
        cols[axis] = [value] * n
    cols["seed"] = [r.seed for r in runs]
    cols["data_seed"] = [r.data_seed for r in runs]
    cols["world"] = [world.name] * n
    cols["config"] = [json.dumps(norm, sort_keys=True)] * n
    cols["verdict"] = final
    cols["train_accuracy"] = acc[:, -1].tolist()
    cols["fit"] = [a >= fit_th - TOLERANCE for a in acc[:, -1].tolist()]
    for i, c in enumerate(CLASSES):
        cols[f"score_{c}"] = scores[:, -1, i].tolist()
    final_agree = agreement[:, -1].tolist()  # (N, cells, classes)
    cols["cells"] = [
        [{"cell": name, **dict(zip(CLASSES, row))} for name, row in zip(evaluator.cell_names, per_run)] for per_run in final_agree
    ]
    cols["traj_step"] = [traj.steps] * n
    cols["traj_phase"] = [traj.phase] * n
    cols["traj_verdict"] = [[traj_verdicts[t][k] for t in range(T)] for k in range(n)]
    for i, c in enumerate(CLASSES):
        cols[f"traj_score_{c}"] = scores[:, :, i].tolist()
    deploy = class_scores(agreement, evaluator.deployment)  # (N, T, classes) on deployment probes
    for i, c in enumerate(CLASSES):
        cols[f"traj_deploy_score_{c}"] = deploy[:, :, i].tolist()
    cols["traj_train_accuracy"] = acc.tolist()
    packed = st["decisions"].numpy()  # (N, T, bytes)
    cols["n_decisions"] = [evaluator.n_decisions] * n
    cols["decisions"] = [packed[k, -1].tobytes() for k in range(n)]
    cols["traj_decisions"] = [[packed[k, t].tobytes() for t in range(T)] for k in range(n)]
    for i, name in enumerate(evaluator.decodable_names):
        cols[f"traj_decode_{name}"] = st["decodability"][:, :, i].tolist()
    losses = st["train_loss"]  # (N, T, heads)
    heads = list(world.heads)
    for h in type(world).all_heads:
        cols[f"traj_loss_{h}"] = losses[:, :, heads.index(h)].tolist() if h in heads else [None] * n
    return pa.table(cols)


def plan(spec: ExperimentSpec, stored: set[str]) -> list[list[Run]]:
    """Pending runs, grouped by condition and cut into chunks."""
    by_cond: dict[str, list[Run]] = {}
    conds: dict[str, Condition] = {}
    for r in expand(spec):
        if r.run_id not in stored:
            by_cond.setdefault(r.condition.label, []).append(r)
            conds[r.condition.label] = r.condition
    chunks = []
    for label, runs in by_cond.items():
        cfg = conds[label].config
        size = chunk_size_for(cfg, build_world(cfg))
        chunks += [runs[i : i + size] for i in range(0, len(runs), size)]
    return chunks


_worker_queue = None
_worker_parent = None


def _init_worker(threads: int, queue) -> None:
    global _worker_queue, _worker_parent
    torch.set_num_threads(threads)
    _worker_queue, _worker_parent = queue, os.getppid()


def _work(key: int, runs: list[Run], device: str) -> tuple[int, tuple[pa.Table, pa.Table | None]]:
    def report(fraction: float) -> None:
        if os.getppid() != _worker_parent:  # the sweep was killed: stop, its chunks are not written
            os._exit(1)
        _worker_queue.put((key, fraction * len(runs)))

    return key, train_chunk(runs, device, on_fraction=report)


def execute(
    chunks: list[list[Run]], device: str = "cpu", workers: int = 1, progress: Progress | None = None
) -> Iterator[tuple[list[Run], tuple[pa.Table, pa.Table | None]]]:
    """Train chunks, yielding (chunk, (rows, weights)) as each finishes. With workers > 1, chunks run in that many
    processes sharing the cores' torch threads between them. On 2 cores one process with two threads
    is the faster default for the flagship (BENCHMARKS.md); processes are how a sweep uses more."""
    progress = progress or Progress()
    if workers <= 1 or len(chunks) <= 1 or device != "cpu":
        for chunk in chunks:
            yield chunk, train_chunk(chunk, device, on_fraction=lambda f, n=len(chunk): progress.advance(f * n))
        return
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(max(1, torch.get_num_threads() // workers), queue))
    try:
        pending = {pool.submit(_work, i, chunk, device) for i, chunk in enumerate(chunks)}
        while pending:
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            while not queue.empty():
                progress.advance(queue.get_nowait()[1])
            for fut in done:
                key, table = fut.result()
                yield chunks[key], table
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_experiment(  # noqa: PLR0913
    spec: ExperimentSpec,
    out: str | Path,
    *,
    spec_text: str | None = None,
    device: str = "cpu",
    chunk_size: int | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run every run of `spec` not yet stored in `out` (workers > 1: that many processes).
    Returns counts {"total", "skipped", "trained", "seconds"}."""
    progress = progress or Progress()
    if device.startswith("cuda") and not torch.cuda.is_available():
        from .spec import SpecError

        raise SpecError(f"--device {device}: no CUDA device is available on this machine")
    store = Store(out)
    store.check_compatible(spec)
    all_runs = expand(spec)
    with store.lock():
        store.initialise(spec, spec_text)
        stored = store.stored_ids(report=progress.message)
        chunks = plan(spec, stored)
        if chunk_size:
            chunks = [c[i : i + chunk_size] for c in chunks for i in range(0, len(c), chunk_size)]
        pending = sum(len(c) for c in chunks)
        progress.start(pending)
        labels = list(dict.fromkeys(r.condition.label for r in all_runs))
        t0 = time.time()
        for chunk, (table, weights) in execute(chunks, device, workers or 1, progress):
            table = table.append_column("experiment", pa.array([spec.name] * len(chunk)))
            table = table.append_column("condition_index", pa.array([labels.index(chunk[0].condition.label)] * len(chunk)))
            store.write_chunk(table, weights)
    return {"total": len(all_runs), "skipped": len(all_runs) - pending, "trained": pending, "seconds": time.time() - t0}
