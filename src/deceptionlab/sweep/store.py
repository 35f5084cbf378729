"""The results folder: Parquet chunks written atomically, one row per run, read back with DuckDB.

Layout of a results folder:
    experiment.json   the spec's fingerprint (what every later run in this folder must share), its
                      axes and their baselines (the no-intervention value of an intervention axis), and
                      the folders its dotted-path worlds' modules were imported from ("world_folders")
    spec.toml         the latest spec run into this folder, as given
    runs/part-*.parquet   one file per finished chunk, renamed into place only once fully written;
                          named part-<first run id>-<sha256 of its bytes, 16 hex digits>.parquet
    weights/part-*.parquet    final weights per run (float32 bytes), when the spec sets save_weights;
                          written before the chunk's runs file, so a stored run has its weights
    .lock             held while a `run` writes here

A chunk is either wholly present or absent, so a sweep killed at any moment resumes by skipping the
run ids already stored. A chunk file whose bytes no longer match the hash in its name (truncated,
overwritten, bit rot: Parquet's own checks miss most damage in the middle of a file) or that cannot
be read is moved aside (`*.corrupt`) and reported, and its runs are computed again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sys
import textwrap
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core import schema
from ..judge.deception import backfill
from ..worlds import add_search_folder
from .kinds import AnySpec, axes_of, baselines_of, fingerprint, kind_of
from .spec import RESULTS_VERSION, SpecError, first_difference


class StoreError(RuntimeError):
    """A results-folder problem, worded as one line."""


class Store:
    """A results folder: `experiment.json` (the spec's fingerprint, its axes), `spec.toml`, the runs as
    Parquet chunks in `runs/` and saved weights in `weights/`. `query(sql)` runs DuckDB over the runs
    (the table is `runs`), `axes()` and `baselines()` name the sweep's axes, `weights(run_ids)` reads
    saved weights. `load(root)` is the one-call reader (every column: docs/results.md)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.weights_dir = self.root / "weights"

    # -- opening ---------------------------------------------------------------------------------
    def check_compatible(self, spec: AnySpec) -> None:
        """Refuse a spec whose fingerprint differs from the folder's (before anything is written)."""
        meta = self.root / "experiment.json"
        if not meta.exists():
            if self.root.exists() and not self.root.is_dir():
                raise StoreError(f"{self.root}: exists and is not a folder")
            return
        try:
            stored = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"{meta}: unreadable ({e})") from None
        if stored.get("version") != RESULTS_VERSION:
            raise StoreError(f"{self.root}: written by results format {stored.get('version')}, this lab writes {RESULTS_VERSION}")
        if stored.get("kind", "train") != kind_of(spec):
            raise SpecError(f"kind: the spec is of kind {kind_of(spec)!r}, results folder {self.root} holds {stored.get('kind', 'train')!r} runs; use another --out")
        new = fingerprint(spec)
        diff = first_difference(stored["fingerprint"], new)
        if diff is not None:
            raise SpecError(
                f"{diff}: differs from the spec that wrote results folder {self.root} "
                f"(experiment {stored['fingerprint'].get('name')!r}); use another --out"
            )

    def initialise(self, spec: AnySpec, spec_text: str | None, world_folders: list[str] = ()) -> None:
        """Write the folder's metadata; `world_folders`: where dotted-path worlds were found, so readers
        of the folder find them again."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        meta = {"version": RESULTS_VERSION, "kind": kind_of(spec), "axes": axes_of(spec), "baselines": baselines_of(spec), "fingerprint": fingerprint(spec)}
        if world_folders:
            meta["world_folders"] = list(world_folders)
        _atomic_write(self.root / "experiment.json", json.dumps(meta, indent=1).encode())
        if spec_text is not None:
            _atomic_write(self.root / "spec.toml", spec_text.encode())

    def remove_stale_temporaries(self) -> int:
        """Delete temp files a killed writer left half-written (`.tmp-part-*`); only call under `lock`, when no
        other writer can be using them. Returns how many were removed."""
        stale = [p for d in (self.runs_dir, self.weights_dir) if d.exists() for p in d.glob(".tmp-part-*")]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    @contextmanager
    def lock(self):
        """Exclusive use of the folder by one writer; a second gets a StoreError at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise StoreError(f"results folder {self.root} is in use by another run (pid {holder}); wait for it or use another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)

    # -- reading ---------------------------------------------------------------------------------
    def axes(self) -> list[str]:
        """The sweep axis names of the experiment in this folder (columns of the runs table)."""
        return list(self._meta().get("axes", []))

    def kind(self) -> str:
        """The spec kind whose runs this folder holds: "train" (also for folders written before kinds
        existed), or a measurement kind (sweep.measurements)."""
        return str(self._meta().get("kind", "train"))

    def world_folders(self) -> list[str]:
        """The folders the modules of this folder's dotted-path worlds were imported from."""
        return list(self._meta().get("world_folders", []))

    def _meta(self) -> dict:
        try:
            return json.loads((self.root / "experiment.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def baselines(self) -> dict[str, str]:
        """Axis name -> the label of its no-intervention value, for the axes the spec gave a `baseline`."""
        try:
            return dict(json.loads((self.root / "experiment.json").read_text()).get("baselines", {}))
        except (OSError, json.JSONDecodeError):
            return {}

    def parts(self) -> list[Path]:
        return sorted(self.runs_dir.glob("part-*.parquet")) if self.runs_dir.exists() else []

    def stored_ids(self, report=print) -> set[str]:
        """Run ids already stored; unreadable chunks are moved aside and reported."""
        ids: set[str] = set()
        for part in self.parts():
            try:
                _verify(part)
                ids.update(pq.read_table(part, columns=["run_id"]).column("run_id").to_pylist())
            except Exception as e:  # any unreadable file is corrupt for our purpose
                bad = part.with_suffix(".corrupt")
                os.replace(part, bad)
                why = str(e) if isinstance(e, CorruptChunk) else f"unreadable: {type(e).__name__}"
                report(f"warning: {part.name} is damaged ({why}); moved to {bad.name}, its runs will be recomputed")
        return ids

    def write_chunk(self, table: pa.Table, weights: pa.Table | None = None) -> Path:
        """Write one chunk's rows atomically (temp file, fsync, rename to a name holding its hash); its
        weights first, if any, so that a stored run has its weights."""
        tmp = _write_tmp(self.runs_dir / f"part-{uuid.uuid4().hex}.parquet", table)
        try:
            name = f"part-{table.column('run_id')[0].as_py()}-{_digest(tmp)}.parquet"
            if weights is not None:
                os.replace(_write_tmp(self.weights_dir / name, weights), self.weights_dir / name)
            os.replace(tmp, self.runs_dir / name)
        finally:
            tmp.unlink(missing_ok=True)
        return self.runs_dir / name

    def weights(self, run_ids) -> dict[str, bytes]:
        """Stored final weights (float32 bytes, in the order of `MLPEnsemble.params`) of these runs."""
        wanted, out = set(run_ids), {}
        for part in sorted(self.weights_dir.glob("part-*.parquet")) if self.weights_dir.exists() else []:
            try:
                t = pq.read_table(part)
            except Exception:  # a torn or corrupt weights file: those runs simply have no weights
                continue
            for rid, blob in zip(t.column("run_id").to_pylist(), t.column("weights").to_pylist()):
                if rid in wanted:
                    out[rid] = blob
        return out

    def query(self, sql: str = "SELECT * FROM runs") -> pd.DataFrame:
        """Run SQL over the stored runs (the view is called `runs`) with DuckDB."""
        con = duckdb.connect()
        parts = self.parts()
        if not parts:
            raise StoreError(f"{self.root}: no results (run `deceptionlab run SPEC --out {self.root}` first)")
        files = ", ".join(f"'{p}'" for p in parts)
        con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet([{files}], union_by_name=true)")
        return con.execute(sql).df()


class CorruptChunk(ValueError):
    """A chunk file whose bytes do not match the hash in its name."""


_HASHED = re.compile(r"-([0-9a-f]{16})\.parquet$")  # older folders name parts with 8 random hex digits: unhashed


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:16]


def _verify(part: Path) -> None:
    m = _HASHED.search(part.name)
    if m and _digest(part) != m.group(1):
        raise CorruptChunk("its bytes do not match the hash in its name")


def _write_tmp(path: Path, table: pa.Table) -> Path:
    """`table` as Parquet in a hidden temp file beside `path`, on disk (fsync); removed again if that fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:6]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load(root: str | Path) -> pd.DataFrame:
    """All runs in a results folder as a DataFrame, one row per run; runs stored before the deception
    columns existed get them computed from their stored decisions. The columns (core.schema, docs/results.md):

{columns}
    """
    root = Path(root)
    if not root.is_dir():
        raise StoreError(f"{root}: no such results folder")
    for folder in Store(root).world_folders():  # measurements that rebuild a user's world find its module
        add_search_folder(folder)
    store = Store(root)
    runs = store.query("SELECT * FROM runs ORDER BY condition_index, seed, data_seed")
    if store.kind() != "train":  # a measurement kind's rows (core.schema.KIND_COLUMNS): no deception columns
        return runs
    return backfill(runs, warn=lambda m: print(m, file=sys.stderr))


load.__doc__ = load.__doc__.format(columns=textwrap.indent(schema.describe(), "    "))
