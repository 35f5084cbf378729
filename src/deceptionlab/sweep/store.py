"""The results folder: Parquet chunks written atomically and listed with their checksums, one row per run,
read back only once verified.

Layout of a results folder (results format 4, docs/results-format.md):
    experiment.json   the results format, the spec's fingerprint (what every later run in this folder must
                      share), its axes and their baselines (the no-intervention value of an intervention axis),
                      and the folders its dotted-path worlds' modules were imported from ("world_folders")
    spec.toml         the latest spec run into this folder, as given
    manifest.jsonl    one line per chunk `run` wrote: its name, the sha256 of its bytes, its rows (and the same
                      for its weights file); appended after the chunk is renamed into place
    runs/part-*.parquet   one file per finished chunk, renamed into place only once fully written;
                          named part-<first run id>-<sha256 of its bytes, 16 hex digits>.parquet
    weights/part-*.parquet    final weights per run (float32 bytes), when the spec sets save_weights;
                          written before the chunk's runs file, so a stored run has its weights
    .lock             the pid of the `run` writing here (the lock itself is on the folder)

A chunk is either wholly present or absent, so a sweep killed at any moment resumes by skipping the
run ids already stored. Every read checks every chunk against the manifest (cached by file size and
modification time): a chunk whose bytes no longer match (truncated, overwritten, bit rot), a chunk the
manifest does not list (a stray copy, a file from elsewhere) and a run id stored twice are problems,
named one line each; `load` refuses a folder with problems (or leaves the bad chunks out when asked),
`verify` lists them, and `run` repairs what it can prove (damaged chunks moved aside and recomputed,
copies removed).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import textwrap
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..core import schema
from ..judge.deception import backfill
from ..worlds import add_search_folder
from ..worlds.registry import note_untrusted_folder
from .kinds import AnySpec, axes_of, baselines_of, fingerprint, kind_of
from .spec import RESULTS_VERSION, SpecError, first_difference

MANIFEST = "manifest.jsonl"


class StoreError(RuntimeError):
    """A results-folder problem, worded as one line."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a results folder: what (`kind`), which file, in one line, and how to repair it."""

    kind: str  # damaged, unreadable, missing, unlisted, copy, duplicate, no-experiment, format
    path: Path
    message: str
    repair: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Entry:
    """A manifest line: a chunk `run` wrote, with its checksum and rows (and its weights file's)."""

    chunk: str
    sha256: str
    rows: int
    weights_sha256: str | None = None

    def line(self) -> str:
        return json.dumps({"chunk": self.chunk, "sha256": self.sha256, "rows": self.rows, "weights_sha256": self.weights_sha256}, sort_keys=True)


_digests: dict[tuple, str] = {}  # (path, size, mtime_ns, inode) -> sha256: a file is hashed once while unchanged


def sha256_of(path: Path, fresh: bool = False) -> str:
    """The sha256 of a file's bytes, cached by its size, modification time and inode (`fresh`: read again)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if fresh or key not in _digests:
        with open(path, "rb") as f:
            _digests[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _digests[key]


class Store:
    """A results folder: `experiment.json` (the spec's fingerprint, its axes), `spec.toml`, the runs as
    Parquet chunks in `runs/` and saved weights in `weights/`. `query(sql)` runs DuckDB over the runs
    (the table is `runs`), `axes()` and `baselines()` name the sweep's axes, `weights(run_ids)` reads
    saved weights. `load(root)` is the one-call reader (every column: docs/results.md)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.weights_dir = self.root / "weights"
        self.manifest = self.root / MANIFEST

    # -- opening ---------------------------------------------------------------------------------
    def check_compatible(self, spec: AnySpec) -> None:
        """Refuse a spec whose fingerprint differs from the folder's, a folder of another results format, and a
        folder with runs but no experiment.json (before anything is written; call under `lock`)."""
        meta = self.root / "experiment.json"
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: exists and is not a folder")
        if not meta.exists():
            if self.parts() or self.manifest.exists():
                raise StoreError(f"{self.root}: holds runs but no experiment.json, so nothing says which experiment they are; "
                                 f"refusing to add to it (`deceptionlab verify {self.root}` says how to repair)")
            return
        stored = self._read_meta()
        if stored.get("kind", "train") != kind_of(spec):
            raise SpecError(f"kind: the spec is of kind {kind_of(spec)!r}, results folder {self.root} holds {stored.get('kind', 'train')!r} runs; use another --out")
        new = fingerprint(spec)
        diff = first_difference(stored["fingerprint"], new)
        if diff is not None:
            raise SpecError(
                f"{diff}: differs from the spec that wrote results folder {self.root} "
                f"(experiment {stored['fingerprint'].get('name')!r}); use another --out"
            )

    def _read_meta(self) -> dict:
        """experiment.json, checked: readable, of this results format; StoreError with one line otherwise."""
        meta = self.root / "experiment.json"
        try:
            stored = json.loads(meta.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"{meta}: unreadable ({getattr(e, 'strerror', None) or e})") from None
        if not isinstance(stored, dict) or not isinstance(stored.get("fingerprint"), dict):
            raise StoreError(f"{meta}: not an experiment.json this lab wrote (no fingerprint)")
        version = stored.get("version")
        if version != RESULTS_VERSION:
            raise StoreError(format_problem(self.root, version))
        return stored

    def initialise(self, spec: AnySpec, spec_text: str | None, world_folders: list[str] = ()) -> None:
        """Write the folder's metadata; `world_folders`: where dotted-path worlds were found (recorded, never
        imported by readers unless they trust the folder)."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        meta = {"version": RESULTS_VERSION, "kind": kind_of(spec), "axes": axes_of(spec), "baselines": baselines_of(spec), "fingerprint": fingerprint(spec)}
        if world_folders:
            meta["world_folders"] = list(world_folders)
        _atomic_write(self.root / "experiment.json", json.dumps(meta, indent=1).encode())
        if spec_text is not None:
            _atomic_write(self.root / "spec.toml", spec_text.encode())
        if not self.manifest.exists():
            _atomic_write(self.manifest, b"")

    def remove_stale_temporaries(self) -> int:
        """Delete temp files a killed writer left half-written (`.tmp-*`); only call under `lock`, when no
        other writer can be using them. Returns how many were removed."""
        stale = [p for d in (self.root, self.runs_dir, self.weights_dir) if d.is_dir() for p in d.glob(".tmp-*")]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    @contextmanager
    def lock(self):
        """Exclusive use of the folder by one writer; a second gets a StoreError at once. The lock is on the
        folder itself (flock), so deleting `.lock` does not release it, and a holder that died (its pid gone)
        holds nothing: the kernel drops its lock, and the next writer takes the folder over."""
        self.root.mkdir(parents=True, exist_ok=True)
        dfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                fcntl.flock(dfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    holder = (self.root / ".lock").read_text(errors="replace").strip() or "?"
                except OSError:
                    holder = "?"
                raise StoreError(f"results folder {self.root} is in use by another run (pid {holder}); wait for it or use another --out") from None
            _atomic_write(self.root / ".lock", str(os.getpid()).encode())
            yield
        finally:
            os.close(dfd)

    # -- the manifest ------------------------------------------------------------------------------
    def entries(self) -> dict[str, Entry]:
        """The chunks the manifest lists (a torn last line, from a writer killed mid-append, is ignored)."""
        try:
            text = self.manifest.read_text(errors="replace")
        except FileNotFoundError:
            return {}
        out = {}
        for line in text.splitlines():
            try:
                d = json.loads(line)
                out[d["chunk"]] = Entry(str(d["chunk"]), str(d["sha256"]), int(d["rows"]), d.get("weights_sha256"))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def _append_entry(self, entry: Entry) -> None:
        fd = os.open(self.manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (entry.line() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rewrite_manifest(self, entries) -> None:
        _atomic_write(self.manifest, "".join(e.line() + "\n" for e in entries).encode())

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
            d = json.loads((self.root / "experiment.json").read_text())
            return d if isinstance(d, dict) else {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}

    def baselines(self) -> dict[str, str]:
        """Axis name -> the label of its no-intervention value, for the axes the spec gave a `baseline`."""
        return dict(self._meta().get("baselines", {}))

    def parts(self) -> list[Path]:
        return sorted(self.runs_dir.glob("part-*.parquet")) if self.runs_dir.is_dir() else []

    def check(self, fresh: bool = False) -> tuple[list[tuple[Path, Entry]], list[Problem]]:
        """Every chunk checked against the manifest: (the good chunks with their entries, the problems).
        Good: listed, present, its bytes (and its weights file's) matching their checksums, no run id in two
        chunks. Reads only the run ids of good chunks; never writes. `fresh`: hash every file again (bit rot
        changes no modification time), else checksums are cached by size and modification time."""
        problems: list[Problem] = []
        meta = self.root / "experiment.json"
        if not meta.exists():
            if self.parts():
                problems.append(Problem("no-experiment", meta, f"{self.root}: holds runs but no experiment.json (nothing says which experiment they are)",
                                        f"if you know the spec that wrote them, move runs/ aside, `deceptionlab run SPEC --out {self.root}` and compare; else delete the folder"))
            return [], problems
        try:
            self._read_meta()
        except StoreError as e:
            return [], [Problem("format", meta, str(e), "see docs/results-format.md")]
        entries = self.entries()
        by_digest = {e.sha256: name for name, e in entries.items()}
        good: list[tuple[Path, Entry]] = []
        present = {p.name: p for p in self.parts()}
        for name, entry in entries.items():  # in the order written: of two chunks holding a run, the later is the copy
            path = self.runs_dir / name
            if name not in present:
                problems.append(Problem("missing", path, f"{path}: listed in the manifest but missing (its runs are not stored)",
                                        f"`deceptionlab run SPEC --out {self.root}` computes them again"))
                continue
            try:
                ok = sha256_of(path, fresh) == entry.sha256
                if ok and entry.weights_sha256 is not None:
                    wpath = self.weights_dir / name
                    ok = wpath.exists() and sha256_of(wpath, fresh) == entry.weights_sha256
                    which = "its weights file"
                else:
                    which = "its bytes"
            except OSError as e:
                problems.append(Problem("unreadable", path, f"{path}: cannot be read ({e.strerror or e}); not damaged as far as anyone knows",
                                        "make it readable (permissions, the disk) and try again"))
                continue
            if not ok:
                problems.append(Problem("damaged", path, f"{path}: {which} do not match the checksum in the manifest (damaged or altered); left out",
                                        f"`deceptionlab run SPEC --out {self.root}` moves it aside and computes its runs again"))
                continue
            good.append((path, entry))
        for name, path in sorted(present.items()):
            if name in entries:
                continue
            try:
                digest = sha256_of(path, fresh)
            except OSError as e:
                digest, why = None, e.strerror
            if digest is not None and digest in by_digest:
                problems.append(Problem("copy", path, f"{path}: a byte-for-byte copy of {by_digest[digest]}, not in the manifest; left out",
                                        f"delete it (`deceptionlab run SPEC --out {self.root}` does)"))
            else:
                problems.append(Problem("unlisted", path, f"{path}: a chunk the manifest does not list (a stray copy or a file from elsewhere); left out",
                                        f"move it out of runs/; `deceptionlab run SPEC --out {self.root}` moves it aside"
                                        + ("" if digest is not None else f" (it cannot even be read: {why})")))
        seen: dict[str, Path] = {}
        unique = []
        for path, entry in good:
            try:
                ids = pq.read_table(path, columns=["run_id"]).column("run_id").to_pylist()
            except Exception as e:  # matches its checksum yet is no Parquet: written so by whoever listed it
                problems.append(Problem("damaged", path, f"{path}: matches its checksum but is not a readable chunk ({type(e).__name__}); left out",
                                        f"`deceptionlab run SPEC --out {self.root}` moves it aside and computes its runs again"))
                continue
            clash = next((r for r in ids if r in seen), None)
            if clash is not None or len(set(ids)) != len(ids):
                other = seen.get(clash, path)
                problems.append(Problem("duplicate", path, f"{path}: run {clash or 'id'} is stored twice (also in {other.name}); left out",
                                        f"`deceptionlab run SPEC --out {self.root}` removes the copy when both hold the same rows"))
                continue
            seen.update(dict.fromkeys(ids, path))
            unique.append((path, entry))
        return unique, problems

    def verified_parts(self, skip_bad: bool = False, warn=None) -> list[Path]:
        """The chunks that pass `check`; StoreError naming the first problem when there is any (or, with
        `skip_bad`, each problem passed to `warn` and its chunk left out)."""
        good, problems = self.check()
        if problems and problems[0].kind in ("no-experiment", "format"):
            raise StoreError(str(problems[0]))
        if problems and not skip_bad:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise StoreError(f"{problems[0]}{more}: `deceptionlab verify {self.root}` lists them and how to repair")
        for p in problems:
            (warn or (lambda m: None))(f"warning: {p}")
        return [p for p, _ in good]

    def stored_ids(self, report=print) -> set[str]:
        """Run ids already stored, after repairing what can be proven (call under `lock`): damaged and
        unlisted chunks are moved aside (`*.corrupt`, `*.foreign`) and their runs computed again, byte copies and
        chunks whose every row is stored elsewhere deleted, missing chunks dropped from the manifest. A chunk that
        cannot be read (permissions) is an error, not damage."""
        good, problems = self.check()
        entries = self.entries()
        for p in problems:
            if p.kind in ("no-experiment", "format", "unreadable"):
                raise StoreError(str(p))
        for p in problems:
            if p.kind == "damaged":
                bad = p.path.with_suffix(".corrupt")
                os.replace(p.path, bad)
                entries.pop(p.path.name, None)
                report(f"warning: {p.path.name} is damaged ({p.message.split(': ', 1)[1].split(';')[0]}); moved to {bad.name}, its runs will be recomputed")
            elif p.kind == "missing":
                entries.pop(p.path.name, None)
                report(f"warning: {p.path.name} is listed but missing; its runs will be recomputed")
            elif p.kind == "copy":
                p.path.unlink()
                report(f"removed {p.path.name}: {p.message.split(': ', 1)[1].split(', not in')[0]}")
        stored = _rows_by_id([path for path, _ in good])
        for p in problems:
            if p.kind == "duplicate":
                if _rows_are_stored(p.path, stored):
                    p.path.unlink()
                    (self.weights_dir / p.path.name).unlink(missing_ok=True)
                    entries.pop(p.path.name, None)
                    report(f"removed {p.path.name}: every one of its runs is stored, identically, in another chunk")
                else:
                    raise StoreError(f"{p.path}: holds runs stored in another chunk with other results; "
                                     "move one of the two out of runs/ and run again")
            elif p.kind == "unlisted":
                if p.path.exists() and _rows_are_stored(p.path, stored):
                    p.path.unlink()
                    report(f"removed {p.path.name}: an unlisted chunk whose every run is stored, identically, in a listed one")
                else:
                    aside = p.path.with_suffix(".foreign")
                    os.replace(p.path, aside)
                    report(f"warning: {p.path.name} is not in the manifest (a stray file, or a write killed before it was listed); "
                           f"moved to {aside.name}, its runs will be computed here")
        if set(entries) != set(self.entries()) or self._manifest_is_torn():
            self._rewrite_manifest(entries.values())
        return set(stored)

    def _manifest_is_torn(self) -> bool:
        try:
            data = self.manifest.read_bytes()
        except FileNotFoundError:
            return False
        return bool(data) and (not data.endswith(b"\n") or len(data.splitlines()) != len(self.entries()))

    def write_chunk(self, table: pa.Table, weights: pa.Table | None = None) -> Path:
        """Write one chunk's rows atomically (temp file, fsync, rename to a name holding its hash), its weights
        first, if any, so that a stored run has its weights; then list it in the manifest."""
        tmp = _write_tmp(self.runs_dir / f"part-{uuid.uuid4().hex}.parquet", table)
        wtmp = None
        try:
            digest = sha256_of(tmp)
            name = f"part-{table.column('run_id')[0].as_py()}-{digest[:16]}.parquet"
            wdigest = None
            if weights is not None:
                wtmp = _write_tmp(self.weights_dir / name, weights)
                wdigest = sha256_of(wtmp)
                os.replace(wtmp, self.weights_dir / name)
            os.replace(tmp, self.runs_dir / name)
            self._append_entry(Entry(name, digest, table.num_rows, wdigest))
        finally:
            tmp.unlink(missing_ok=True)
            if wtmp is not None:
                wtmp.unlink(missing_ok=True)
        return self.runs_dir / name

    def weights(self, run_ids) -> dict[str, bytes]:
        """Stored final weights (float32 bytes, in the order of `MLPEnsemble.params`) of these runs, from
        verified chunks only."""
        wanted, out = set(run_ids), {}
        for part in self.verified_parts(skip_bad=True):
            wpart = self.weights_dir / part.name
            if not wpart.exists():
                continue
            t = pq.read_table(wpart)
            for rid, blob in zip(t.column("run_id").to_pylist(), t.column("weights").to_pylist()):
                if rid in wanted:
                    out[rid] = blob
        return out

    def query(self, sql: str = "SELECT * FROM runs", skip_bad: bool = False, warn=None) -> pd.DataFrame:
        """Run SQL over the verified runs (the view is called `runs`) with DuckDB; StoreError when a chunk
        is damaged, unlisted or a duplicate (`skip_bad`: left out, each named to `warn`)."""
        con = duckdb.connect()
        try:
            con.execute("SET enable_progress_bar = false")  # a progress bar on stdout would corrupt --format json
        except duckdb.InvalidInputException:  # in Jupyter without ipywidgets DuckDB refuses the setting: it has no bar to show there
            pass
        parts = self.verified_parts(skip_bad, warn)
        if not parts:
            raise StoreError(f"{self.root}: no results (run `deceptionlab run SPEC --out {self.root}` first)")
        files = ", ".join("'" + str(p).replace("'", "''") + "'" for p in parts)
        con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet([{files}], union_by_name=true)")
        return con.execute(sql).df()


def format_problem(root: Path, version) -> str:
    """One line for a folder of another results format."""
    if isinstance(version, int) and not isinstance(version, bool) and version < RESULTS_VERSION:
        return f"{root}: written by results format {version}; this lab reads format {RESULTS_VERSION}: convert it once with `deceptionlab migrate {root}`"
    return f"{root}: written by results format {version!r}, which this lab (format {RESULTS_VERSION}) does not know: use the deceptionlab that wrote it"


def _rows_by_id(parts: list[Path]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for part in parts:
        for row in pq.read_table(part).to_pylist():
            rows[row["run_id"]] = row
    return rows


def _rows_are_stored(part: Path, stored: dict[str, dict]) -> bool:
    """Whether every row of `part` is stored, equal in every column, in `stored` (proof that it is a copy)."""
    try:
        rows = pq.read_table(part).to_pylist()
    except Exception:
        return False
    return bool(rows) and all(_same(stored.get(r["run_id"]), r) for r in rows)


def _same(a, b) -> bool:
    if a is None:
        return False
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True, default=repr)


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
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


TRUST_FOLDERS = False
"""Set by the command line's --trust-folder: every `load` then trusts the folders its results folder names."""


def load(root: str | Path, *, skip_bad: bool = False, trust_folder: bool = False) -> pd.DataFrame:
    """All runs in a results folder as a DataFrame, one row per run; runs stored before the deception
    columns existed get them computed from their stored decisions.

    Every chunk is verified first (docs/results-format.md): a damaged, unlisted or duplicated chunk is a
    StoreError naming it, or with `skip_bad` a warning on stderr and the chunk left out. `trust_folder`: let
    measurements that rebuild a dotted-path world import its module from the folders the results folder
    names (that runs the code in them); by default only sys.path, the spec's folder and the working directory
    are searched.

    The columns (core.schema, docs/results.md):

{columns}
    """
    root = Path(root)
    if not root.is_dir():
        raise StoreError(f"{root}: no such results folder")
    for folder in Store(root).world_folders():
        if trust_folder or TRUST_FOLDERS:
            add_search_folder(folder)
        else:
            note_untrusted_folder(folder)
    warn = lambda m: print(m, file=sys.stderr)  # noqa: E731
    store = Store(root)
    runs = store.query("SELECT * FROM runs ORDER BY condition_index, seed, data_seed", skip_bad=skip_bad, warn=warn)
    if store.kind() != "train":  # a measurement kind's rows (core.schema.KIND_COLUMNS): no deception columns
        return runs
    return backfill(runs, warn=warn)


load.__doc__ = load.__doc__.format(columns=textwrap.indent(schema.describe(), "    "))
