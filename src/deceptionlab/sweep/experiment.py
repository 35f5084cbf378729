"""Executing an experiment: pending runs are cut into chunks, each chunk is one batched ensemble.

A chunk holds runs of one condition (same architecture and curriculum, different seeds), is trained
as one tensor program, scored, and written as one Parquet file. Chunks are sized to a memory budget.
Where chunks run (this process, local worker processes, a Ray cluster) is `executors.py`'s concern;
this process plans them and stores each result as it comes back.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..core.devices import cores, device_problem
from ..core.scoring import TOLERANCE, decision_codes
from ..families import family_for
from ..judge.deception import Judge, cell_set_scores, derive
from ..worlds import CLASSES, World, make_world, world_folder
from .executors import ExecutorError, Local, Progress, RayCluster, default_workers, executor_for
from .kinds import AnySpec, expand
from .measurements import SAMPLED_ELSEWHERE, chunk_key, is_measurement, measurement_chunk
from .measurements import chunk_size as measurement_chunk_size
from .measurements import seconds_per_run as measurement_seconds
from .spec import (
    MAX_CONDITIONS,
    ExperimentSpec,
    Run,
    RunConfig,
    SpecError,
    condition_at,
    condition_runs,
    iter_conditions,
    run_config,
    run_id,
)
from .store import Store

MAX_CHUNK = 1024  # beyond this, batched matmuls gain nothing more on a CPU
LONG_SWEEP = 3600.0  # estimated seconds past which a sweep asks for --yes
CHUNK_OVERHEAD = 512 << 20  # bytes a training process holds besides its chunk (torch, the lab, the world's data: about 410 MB measured)
MAX_CHUNK_SIZE = 65536  # the most runs --chunk-size may put in one ensemble (memory is checked too)
DEFAULT_MEMORY = 1 << 30  # bytes a chunk may use
FLOP_RATE = 3e10  # FLOP/s one process trains at on this machine class (BENCHMARKS.md): for estimates only


def check_device(device: str) -> str:
    """`device` if this machine has it: cpu, cuda, or cuda:N for N below the CUDA device count; SpecError with
    one line otherwise (before anything is written)."""
    problem = device_problem(device)
    if problem is not None:
        raise SpecError(problem)
    return device


def build_world(config: RunConfig) -> World:
    return make_world(config.world.name, config.world.knobs)


def _n_params(config: RunConfig, world: World) -> int:
    """Parameters of one model, for estimates, weighted by what the model family's forward pass costs per
    parameter (`Family.n_params`: a transformer's count every position)."""
    return family_for(world, config).n_params(world, config.model.depth, config.model.width)


def _n_eval(world: World) -> int:
    """Inputs scored at every trajectory checkpoint."""
    n = sum(len(c.x) for c in world.probe_cells) + len(world.datasets[world.fit_dataset].x)
    return n + sum(len(x.x) for x in world.decodables.values())


def chunk_size_for(config: RunConfig, world: World, memory: int = DEFAULT_MEMORY) -> int:
    """Members per chunk so that parameters, optimiser state, activations and evaluation fit `memory`."""
    d, w = config.model.depth, config.model.width
    rows = len(world.heads) * config.optimizer.batch_size
    floats = 5 * _n_params(config, world) + 4 * rows * (w * d + world.input_dim) + 2 * _n_eval(world) * (w + len(CLASSES))
    return max(1, min(MAX_CHUNK, memory // (4 * floats)))


def chunk_bytes(config: RunConfig, world: World, members: int) -> int:
    """Estimated peak memory of training a chunk of `members` runs (what `chunk_size_for` budgets): parameters
    with gradients and optimiser state, activations of a step, the checkpoint evaluation; plus the process's
    own footprint (torch, the world's data), CHUNK_OVERHEAD."""
    d, w = config.model.depth, config.model.width
    rows = len(world.heads) * config.optimizer.batch_size
    floats = 5 * _n_params(config, world) + 4 * rows * (w * d + world.input_dim) + 2 * _n_eval(world) * (w + len(CLASSES))
    return CHUNK_OVERHEAD + 4 * members * floats


def available_memory() -> int:
    """Bytes this process can still use: the least of the memory the kernel reports available, the cgroup's
    limit and the address-space limit (ulimit -v)."""
    import resource

    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text.isdigit():
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip() or 0)
            limits.append(int(text) - used)
    except (OSError, ValueError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(soft - _rss())
    if not limits:
        limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return max(0, min(limits))


def _rss() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")  # virtual size: what RLIMIT_AS counts
    except OSError:
        return 0


@dataclass
class Estimate:
    """What a sweep will cost before it starts: runs, conditions, seconds in one process, and its largest chunk."""

    runs: int
    conditions: int
    seconds: float
    chunk_runs: int
    chunk_bytes: int
    chunk_condition: str
    sampled: int = 0  # 0: every condition costed; else the estimate is from this many conditions spread over the grid

    def describe(self, workers: int = 1) -> str:
        sample = f" (from {self.sampled:,} of them, spread over the grid)" if self.sampled else ""
        return (f"{self.runs:,} runs in {self.conditions:,} conditions, about {_duration(self.seconds / max(1, workers))}{sample} "
                f"on {workers} process{'es' if workers > 1 else ''}, "
                f"up to {_gb(self.chunk_bytes)} per chunk of {self.chunk_runs} runs")


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**28 else f"{n / 2**20:.0f} MB"


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.1f} minutes" if seconds >= 60 else f"{seconds:.0f} s"


def memory_budget() -> int:
    """Bytes a default-sized chunk may use: DEFAULT_MEMORY, less where the machine has less to spare."""
    return max(1, min(DEFAULT_MEMORY, available_memory() - CHUNK_OVERHEAD))


ESTIMATE_SAMPLE = 256  # a grid of more conditions is estimated from this many spread over it (a world is built per condition costed)


def estimate(spec: AnySpec, chunk_size: int | None = None) -> Estimate:
    """The sweep's cost, from its conditions alone (without listing its runs, so a huge sweep is estimated at once:
    past ESTIMATE_SAMPLE conditions, from that many spread evenly over the grid, scaled to all of it); a measurement
    kind's from its runs (few, and small: imitators and random draws)."""
    from .spec import condition_at, grid_size

    if not isinstance(spec, ExperimentSpec):
        runs = expand(spec)
        seconds = sum(measurement_seconds(r) for r in runs)
        size = min(len(runs), chunk_size or (measurement_chunk_size(runs[0]) if runs else 1))
        return Estimate(len(runs), len({chunk_key(r) for r in runs}), seconds, size, 0, "")
    per_cond = len(spec.seeds) * len(spec.data_seeds or [0])
    n = grid_size(spec)
    picks = range(n) if n <= ESTIMATE_SAMPLE else sorted({i * (n - 1) // (ESTIMATE_SAMPLE - 1) for i in range(ESTIMATE_SAMPLE)})
    seconds, worst, base, budget = 0.0, (0, 0, ""), spec.base_config(), memory_budget()
    for index in picks:
        cond = condition_at(spec, index, base=base)
        world = build_world(cond.config)
        seconds += seconds_per_run(cond.config, world) * per_cond
        size = min(per_cond, chunk_size or chunk_size_for(cond.config, world, budget))
        need = chunk_bytes(cond.config, world, size)
        if need > worst[0]:
            worst = (need, size, cond.label)
    return Estimate(per_cond * n, n, seconds * n / max(1, len(picks)), worst[1], worst[0], worst[2], 0 if n <= ESTIMATE_SAMPLE else len(picks))


@dataclass
class DryRun:
    """What `run_experiment` would do, found without writing anything (`run --dry-run`)."""

    estimate: Estimate  # the whole sweep's (runs, conditions, largest chunk and its memory)
    stored: int  # runs already in the results folder
    pending: int  # runs to train
    chunks: int  # chunks they are cut into
    seconds: float  # their estimated seconds in one process
    workers: int  # local worker processes a run would start (1 for Ray: its cluster decides)


def dry_run(spec: AnySpec, out: str | Path, chunk_size: int | None = None, executor=None, device: str = "cpu") -> DryRun:
    """The plan of `run_experiment(spec, out, ...)` with its cost: the estimate `check_cost` gives (memory
    refused as there), the runs already stored in `out` and the chunks `plan` cuts the rest into. Reads `out`
    when it holds an experiment of this spec (check_compatible's refusal otherwise), writes nothing."""
    cost = estimate(spec, chunk_size)
    memory = available_memory()
    if cost.chunk_bytes > memory:
        raise SpecError(f"a chunk of {cost.chunk_runs} runs of [{cost.chunk_condition}] needs about {_gb(cost.chunk_bytes)} of memory and this "
                        f"machine has {_gb(memory)} available: lower --chunk-size, or the model's width or depth")
    stored: set[str] = set()
    if (Path(out) / "experiment.json").exists():
        store = Store(out)
        store.check_compatible(spec)
        stored = store.stored_ids()
    chunks, seconds = plan(spec, stored, chunk_size)
    workers = 1
    if executor is None or isinstance(executor, Local):
        workers = (executor.workers if executor is not None and executor.workers else default_workers(len(chunks), seconds, device))
        workers = max(1, min(workers, max(1, len(chunks)), cores()))
    return DryRun(cost, len(stored), chunks.pending, len(chunks), seconds, workers)


class NeedsConfirmation(SpecError):
    """A sweep whose estimate passes a limit: it starts only when asked again with yes=True (--yes)."""


def check_cost(spec: AnySpec, chunk_size: int | None, executor=None, device: str = "cpu", yes: bool = False) -> Estimate:
    """The sweep's estimate, refused (SpecError, one line) when a chunk cannot fit the memory available, or
    (NeedsConfirmation) when it passes LONG_SWEEP in one process or MAX_CONDITIONS conditions and `yes` is not given."""
    cost = estimate(spec, chunk_size)
    memory = available_memory()
    if cost.chunk_bytes > memory:
        raise SpecError(f"a chunk of {cost.chunk_runs} runs of [{cost.chunk_condition}] needs about {_gb(cost.chunk_bytes)} of memory and this "
                        f"machine has {_gb(memory)} available: lower --chunk-size, or the model's width or depth")
    if (cost.seconds > LONG_SWEEP or cost.conditions > MAX_CONDITIONS) and not yes:
        n = 1
        if isinstance(executor, Local):
            n = executor.workers or default_workers(cost.runs, cost.seconds, device)
        raise NeedsConfirmation(f"a large sweep: {cost.describe(n)}; pass --yes to start it")
    return cost


def seconds_per_run(config: RunConfig, world: World) -> float:
    """A rough estimate of one run's training time in one process: 6 FLOP per parameter per training row
    (forward and backward), 2 per scored input at each checkpoint, at FLOP_RATE."""
    phases = config.normalised()["phases"]
    rows = sum(ph["steps"] * len(ph["heads"]) for ph in phases) * config.optimizer.batch_size
    checkpoints = sum(ph["steps"] for ph in phases) // config.log_every + 1
    return _n_params(config, world) * (6 * rows + 2 * _n_eval(world) * checkpoints) / FLOP_RATE


def train_chunk(runs: list[Run], device: str = "cpu", on_fraction=None) -> tuple[pa.Table, pa.Table | None]:
    """Train one chunk of runs of the same condition with their world's model family; return their
    result rows, and their final weights when the config asks for them. A chunk of a measurement kind
    (sweep.measurements) is that kind's work, with no weights."""
    cfg = runs[0].config
    if is_measurement(cfg):
        return measurement_chunk(runs, device, on_fraction), None
    world = build_world(cfg)
    res = family_for(world, cfg).train_chunk(world, cfg, runs, device, on_fraction)
    weights = None
    if res.weights is not None:
        flat = res.weights.numpy()
        weights = pa.table({"run_id": [r.run_id for r in runs], "weights": [row.tobytes() for row in flat]})
    table = rows_table(runs, world, res.evaluator, res.trajectory, cfg.normalised())
    for name, values in res.columns.items():
        table = table.append_column(name, pa.array(values))
    return table, weights


def rows_table(runs: list[Run], world: World, evaluator, traj, norm: dict) -> pa.Table:
    cfg = runs[0].config
    st = traj.stacked()
    agreement = st["agreement"]  # (N, T, cells, classes)
    acc = st["train_accuracy"]  # (N, T)
    th, fit_th = cfg.verdict.threshold, cfg.verdict.fit_threshold
    T = len(traj.steps)
    packed = st["decisions"].numpy()  # (N, T, bytes)
    judge = Judge.of(world)
    scores, deploy = cell_set_scores(agreement.numpy(), judge.halves)  # (N, T, classes): over the judged cells, and their deployment part
    codes = decision_codes(packed, evaluator.n_decisions, judge.n_probe)  # (N, T, probe inputs)
    derived = derive(judge, codes, acc.numpy(), th, fit_th)  # docs/deception.md: the verdicts, the gap, soft verdicts
    n = len(runs)
    cols: dict[str, list] = {"run_id": [r.run_id for r in runs]}
    cols["condition"] = [r.condition.label for r in runs]
    for axis, value in runs[0].condition.axes.items():
        cols[axis] = [value] * n
    cols["seed"] = [r.seed for r in runs]
    cols["data_seed"] = [r.data_seed for r in runs]
    cols["world"] = [world.name] * n
    cols["config"] = [json.dumps(norm, sort_keys=True)] * n
    cols["verdict"] = derived.pop("verdict")
    cols["train_accuracy"] = acc[:, -1].tolist()
    cols["fit"] = [a >= fit_th - TOLERANCE for a in acc[:, -1].tolist()]
    cols["fit_loss"] = st["fit_loss"][:, -1].tolist() if "fit_loss" in st else [float("nan")] * n  # a family may not log it
    cols["stop_step"] = pa.array(traj.stop_step or [None] * n, type=pa.int64())
    for i, c in enumerate(CLASSES):
        cols[f"score_{c}"] = scores[:, -1, i].tolist()
    final_agree = agreement[:, -1].tolist()  # (N, cells, classes)
    cols["cells"] = [
        [{"cell": name, **dict(zip(CLASSES, row))} for name, row in zip(evaluator.cell_names, per_run)] for per_run in final_agree
    ]
    cols["traj_step"] = [traj.steps] * n
    cols["traj_phase"] = [traj.phase] * n
    cols["traj_verdict"] = derived.pop("traj_verdict")
    for i, c in enumerate(CLASSES):
        cols[f"traj_score_{c}"] = scores[:, :, i].tolist()
    for i, c in enumerate(CLASSES):
        cols[f"traj_deploy_score_{c}"] = deploy[:, :, i].tolist()
    cols["traj_train_accuracy"] = acc.tolist()
    cols["n_decisions"] = [evaluator.n_decisions] * n
    cols["decisions"] = [packed[k, -1].tobytes() for k in range(n)]
    cols["traj_decisions"] = [[packed[k, t].tobytes() for t in range(T)] for k in range(n)]
    for i, name in enumerate(evaluator.decodable_names):
        cols[f"traj_decode_{name}"] = st["decodability"][:, :, i].tolist()
    losses = st["train_loss"]  # (N, T, heads)
    heads = list(world.heads)
    for h in type(world).all_heads:
        cols[f"traj_loss_{h}"] = losses[:, :, heads.index(h)].tolist() if h in heads else [None] * n
    cols.update(derived)
    return pa.table(cols)


class ChunkRuns(list):
    """One chunk's runs (a list), with the index of their condition in the spec's grid (stored as `condition_index`)."""

    condition_index: int = 0


class Chunks(Sequence):
    """The planned chunks, costliest first, as a sequence the executors index. A training spec's chunk is kept as
    (its condition's grid index, its drawn goal, its runs' (seed, data_seed) pairs) and made into runs when taken
    (the condition rebuilt from its index): planning a huge grid never holds every run. A measurement kind's
    chunks (few, small) are kept as runs."""

    def __init__(self, spec: AnySpec, entries: list, total: int, world_names: set[str]):
        self.spec, self.entries, self.total, self.world_names = spec, entries, total, world_names
        self.pending = sum(e[1] for e in entries)
        self._made: OrderedDict[int, ChunkRuns] = OrderedDict()  # the chunks made last (executors take a chunk several times)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]  # negative indices; IndexError past the end (which also ends iteration)
        if i in self._made:
            self._made.move_to_end(i)
            return self._made[i]
        _, _, index, pairs = self.entries[i]
        if isinstance(pairs, ChunkRuns):
            return pairs
        chunk = ChunkRuns(condition_runs(self.spec, condition_at(self.spec, index), pairs=pairs))
        chunk.condition_index = index
        self._made[i] = chunk
        while len(self._made) > 64:
            self._made.popitem(last=False)
        return chunk


PLAN_REPORT_SECONDS = 2.0  # planning that takes longer says how far it is, at most this often


def _reporter(message, what: str):
    """`report(done, total)` that prints "planning: done of total what (p%)" every PLAN_REPORT_SECONDS, and at the end
    when it printed before."""
    t0 = last = time.time()
    said = [False]

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.time()
        if now - last >= PLAN_REPORT_SECONDS or (done == total and said[0]):
            last = now
            said[0] = True
            message(f"planning: {done:,} of {total:,} {what} ({100 * done / max(1, total):.0f}%, {now - t0:.0f} s)")

    return report


def plan(spec: AnySpec, stored: set[str], chunk_size: int | None = None, message=None) -> tuple[Chunks, float]:
    """Pending runs, grouped by condition (a measurement kind: by its chunk key), cut into chunks (of
    `chunk_size`, else sized to memory) and ordered costliest first, so that parallel workers end on short
    chunks; and their estimated seconds in one process. A training spec is planned condition by condition
    (streamed: what is kept per chunk is its condition's index and its runs' seeds); `message` gets a line
    on how far planning is every PLAN_REPORT_SECONDS."""
    budget = memory_budget()
    entries = []  # (seconds, runs, condition index, pairs or ChunkRuns)
    if not isinstance(spec, ExperimentSpec):
        all_runs = expand(spec)
        labels = list(dict.fromkeys(r.condition.label for r in all_runs))
        by_key: dict[tuple, list[Run]] = {}
        for r in all_runs:
            if r.run_id not in stored:
                by_key.setdefault(chunk_key(r), []).append(r)
        for runs in by_key.values():
            size, per_run = chunk_size or measurement_chunk_size(runs[0]), measurement_seconds(runs[0])
            for i in range(0, len(runs), size):
                chunk = ChunkRuns(runs[i : i + size])
                chunk.condition_index = labels.index(chunk[0].condition.label)
                entries.append((per_run * len(chunk), len(chunk), chunk.condition_index, chunk))
        names = {r.config.world.name for r in all_runs}
        total = len(all_runs)
    else:
        total, names = 0, set()
        data_seeds = spec.data_seeds
        report = _reporter(message, "conditions") if message is not None else None
        for index, (cond, norm) in enumerate(iter_conditions(spec, report=report)):
            names.add(cond.config.world.name)
            groups: dict[str | None, tuple[RunConfig, list]] = {}  # a chunk is one config: runs of a condition with drawn own goals split
            norms: dict[str | None, dict] = {None: norm}
            for seed in spec.seeds:
                cfg = run_config(cond, seed)
                key = None if cfg is cond.config else json.dumps(cfg.world.knobs, sort_keys=True)
                if key not in norms:
                    norms[key] = cfg.normalised()
                for data_seed in data_seeds if data_seeds is not None else [seed]:
                    total += 1
                    if run_id(norms[key], seed, data_seed) not in stored:
                        groups.setdefault(key, (cfg, []))[1].append((seed, data_seed))
            for cfg, pairs in groups.values():
                world = build_world(cfg)
                size = chunk_size or chunk_size_for(cfg, world, budget)
                per_run = seconds_per_run(cfg, world)
                entries += [(per_run * len(pairs[i : i + size]), len(pairs[i : i + size]), index, tuple(pairs[i : i + size]))
                            for i in range(0, len(pairs), size)]
    entries.sort(key=lambda e: -e[0])  # stable: equal costs keep the spec's order
    return Chunks(spec, entries, total, names), sum(e[0] for e in entries)


def run_experiment(  # noqa: PLR0913
    spec: AnySpec,
    out: str | Path,
    *,
    spec_text: str | None = None,
    device: str = "cpu",
    chunk_size: int | None = None,
    executor: str | Local | RayCluster = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
    yes: bool = False,
    work=None,
) -> dict:
    """Run every run of `spec` not yet stored in `out` on `executor` ("local": `workers` processes on this
    machine; "ray": the Ray cluster at `address`; or an executor from `executors`).
    Before anything is written the sweep is estimated (`estimate`): a chunk that cannot fit this machine's
    memory is refused, and a sweep estimated past an hour (LONG_SWEEP) in one process raises NeedsConfirmation
    with the estimate unless `yes`.
    `work`: the chunk work (a module-level function like `train_chunk`) for the kinds whose sampler lives
    above sweep (`measurements.SAMPLED_ELSEWHERE`; the api passes `measure.sampled.chunk_work`).
    Returns counts {"total", "skipped", "trained", "seconds"}."""
    progress = progress or Progress()
    check_device(device)
    if work is None and getattr(spec, "kind", "train") in SAMPLED_ELSEWHERE:
        raise SpecError(f"kind {spec.kind!r}: its chunks sample with {SAMPLED_ELSEWHERE[spec.kind]}: run the spec with deceptionlab.run "
                        "(or the command line), which passes that work")
    if chunk_size is not None and not (isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and 1 <= chunk_size <= MAX_CHUNK_SIZE):
        raise SpecError(f"--chunk-size {chunk_size!r}: must be a whole number from 1 to {MAX_CHUNK_SIZE}")
    if isinstance(executor, str):
        executor = executor_for(executor, workers, address)
    if isinstance(executor, RayCluster) and device != "cpu":
        raise ExecutorError(f"--device {device}: the Ray executor runs chunks on CPUs")
    if isinstance(executor, Local) and executor.workers is not None and executor.workers > cores():
        progress.message(f"note: --workers {executor.workers}: capped at {cores()}, the cores of this machine")
        executor = Local(cores())
    cost = check_cost(spec, chunk_size, executor, device, yes)
    if cost.runs > 100_000:
        progress.message(f"planning {cost.runs:,} runs ...")
    store = Store(out)
    fresh = not Path(out).exists()
    with store.lock():  # the folder's experiment is decided under the lock: two specs never both write here
        store.check_compatible(spec)
        store.remove_stale_temporaries()  # a writer killed mid-write leaves its temp file behind, even before experiment.json
        if (Path(out) / "experiment.json").exists():
            stored = store.stored_ids(report=progress.message)
        else:  # a new folder (check_compatible refuses one with runs but no experiment.json): nothing stored
            stored = set()
        try:
            chunks, seconds = plan(spec, stored, chunk_size, progress.message)  # every grid point validated: before anything is written
        except SpecError:
            if fresh:
                _remove_new_folder(Path(out))
            raise
        folders = sorted({str(f) for f in map(world_folder, chunks.world_names) if f is not None})
        store.initialise(spec, spec_text, folders)
        if isinstance(executor, Local) and executor.workers is None:
            executor = Local(default_workers(len(chunks), seconds, device))
        elif isinstance(executor, Local) and executor.workers > max(1, len(chunks)):
            progress.message(f"note: --workers {executor.workers}: capped at {max(1, len(chunks))}, the chunks to train")
            executor = Local(max(1, len(chunks)))
        pending = chunks.pending
        progress.start(pending)
        t0 = time.time()
        for chunk, (table, weights) in executor.run(chunks, work or train_chunk, device, progress):
            table = table.append_column("experiment", pa.array([spec.name] * len(chunk)))
            table = table.append_column("condition_index", pa.array([chunk.condition_index] * len(chunk)))
            store.write_chunk(table, weights)
    return {"total": chunks.total, "skipped": chunks.total - pending, "trained": pending, "seconds": time.time() - t0}


def _remove_new_folder(out: Path) -> None:
    """Remove the folder this run created, when it holds nothing but its lock (a spec refused while planning)."""
    try:
        if {p.name for p in out.iterdir()} <= {".lock"}:
            (out / ".lock").unlink(missing_ok=True)
            out.rmdir()
    except OSError:
        pass
