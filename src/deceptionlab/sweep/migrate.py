"""`deceptionlab migrate DIR`: a results folder of format 3 converted to format 4, without a way to lose data.

Under the folder's lock, the new folder is written beside the old one (`DIR/.migrate/new`): every run with
its format-4 id (the hash of its whole normalised config) and its config in full, every chunk listed in a
manifest with its checksum. It is then verified against the old one (as many rows, the id mapping one to one,
every other column of every run equal, the weights of every run that had them) and only then swapped in,
directory by directory, `experiment.json` last (the commit: before it the folder reads as format 3, after it
as format 4). The old files stay in `DIR/.migrate/old` until the commit (kept as `DIR/format3/` with
`keep_old`). Killed at any moment, the same command resumes: before the verification it starts the new
folder again, after it it finishes the swap. docs/results-format.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import format3
from .spec import RESULTS_VERSION, RunConfig, SpecError, run_id
from .store import Store, StoreError, _atomic_write, _same, format_problem, sha256_of

STAGE = ".migrate"
ID_MAP = "format3-ids.json"  # old run id -> new run id, kept in the migrated folder
_HASHED = re.compile(r"-([0-9a-f]{16})\.parquet$")  # older format-3 folders name chunks with 8 random hex digits


def _step(name: str) -> None:
    """A point where tests kill the migration (DECEPTIONLAB_KILL_AT=name): the resume must cope with each."""
    if os.environ.get("DECEPTIONLAB_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def config4(config3: dict) -> dict:
    """A format-3 normalised config as format 4 normalises it: every field, defaults filled in."""
    d = dict(config3)
    draw = d.pop("draw_own_goal", False)  # a drawn own goal sits in the knobs: validate the config without the draw
    try:
        norm = RunConfig.model_validate(d).normalised()
    except Exception as e:  # ValidationError, WorldError: one line
        raise SpecError(f"a stored config no longer validates ({str(e).splitlines()[0]})") from None
    norm["draw_own_goal"] = draw
    return json.loads(json.dumps(norm, sort_keys=True))


def fingerprint4(fp3: dict) -> dict:
    """A format-3 folder fingerprint as format 4 computes it."""
    d = dict(fp3)
    name, sweep = d.pop("name"), d.pop("sweep")
    draw = d.pop("draw_own_goal", False)
    cfg = RunConfig.model_validate(d).model_dump()
    cfg.pop("save_weights")
    cfg.update(name=name, sweep=sweep, draw_own_goal=draw)
    return json.loads(json.dumps(cfg, sort_keys=True))


def migrate(root: str | Path, report=print, keep_old: bool = False) -> dict:
    """Convert the format-3 folder `root` to format 4 (or finish a migration that was killed). Returns
    {"runs", "chunks", "resumed"}; StoreError with one line when the folder cannot be converted (nothing
    changed then)."""
    root = Path(root)
    if not (root / "experiment.json").is_file():
        raise StoreError(f"{root}: no results folder (no experiment.json)")
    store = Store(root)
    stage = root / STAGE
    with store.lock():
        meta = _meta(root)
        version = meta.get("version")
        if (stage / "VERIFIED").exists():
            report(f"{root}: finishing a migration that was interrupted after its verification")
            n = _swap(root, stage, keep_old)
            return {"runs": n, "chunks": None, "resumed": True}
        if version == RESULTS_VERSION:
            shutil.rmtree(stage, ignore_errors=True)  # a stage without VERIFIED: a migration that never committed
            return {"runs": 0, "chunks": 0, "resumed": False, "already": True}
        if version != format3.VERSION:
            raise StoreError(format_problem(root, version))
        resumed = stage.exists()
        if resumed:
            report(f"{root}: an interrupted migration is started again (the old folder is untouched)")
        shutil.rmtree(stage, ignore_errors=True)
        (stage / "new").mkdir(parents=True)
        try:
            mapping, old_rows, chunks = _build(root, stage / "new", meta, report)
            _step("built")
            _verify(stage / "new", mapping, old_rows, root)
        except StoreError:
            shutil.rmtree(stage, ignore_errors=True)  # nothing was changed: leave nothing behind either
            raise
        _atomic_write(stage / "VERIFIED", b"")
        _step("verified")
        _swap(root, stage, keep_old)
        return {"runs": len(mapping), "chunks": chunks, "resumed": resumed}


def _meta(root: Path) -> dict:
    try:
        meta = json.loads((root / "experiment.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StoreError(f"{root / 'experiment.json'}: unreadable ({getattr(e, 'strerror', None) or e})") from None
    if not isinstance(meta, dict):
        raise StoreError(f"{root / 'experiment.json'}: not an experiment.json this lab wrote")
    return meta


def _old_chunks(root: Path) -> list[Path]:
    """The format-3 chunks, each checked against the hash in its name where it has one."""
    parts = sorted((root / "runs").glob("part-*.parquet")) if (root / "runs").is_dir() else []
    for part in parts:
        m = _HASHED.search(part.name)
        if m and sha256_of(part)[:16] != m.group(1):
            raise StoreError(f"{part}: damaged (its bytes do not match the hash in its name); nothing was changed: "
                             "move it out of runs/ (its runs are then missing) and migrate again")
    return parts


def _build(root: Path, new: Path, meta: dict, report) -> tuple[dict[str, str], dict[str, dict], int]:
    """Write the format-4 folder into `new`: (old id -> new id, old id -> old row, chunks written)."""
    fp3 = meta.get("fingerprint")
    if not isinstance(fp3, dict):
        raise StoreError(f"{root / 'experiment.json'}: has no fingerprint; not a folder this lab wrote")
    try:
        fp4 = fingerprint4(fp3)
    except Exception as e:
        raise StoreError(f"{root}: its experiment no longer validates ({str(e).splitlines()[0]})") from None
    out = Store(new)
    out.runs_dir.mkdir(parents=True)
    meta4 = {k: v for k, v in meta.items() if k not in ("version", "fingerprint")}
    meta4.update(version=RESULTS_VERSION, fingerprint=fp4, migrated_from=format3.VERSION)
    mapping: dict[str, str] = {}
    old_rows: dict[str, dict] = {}
    converted: dict[str, dict] = {}  # format-3 config JSON -> format-4 config (a condition's runs share one)
    chunks = 0
    for part in _old_chunks(root):
        try:
            table = pq.read_table(part)
        except Exception as e:
            raise StoreError(f"{part}: unreadable ({type(e).__name__}); nothing was changed") from None
        rows = table.to_pylist()
        keep, ids = [], []
        for i, row in enumerate(rows):
            rid = row["run_id"]
            if rid in old_rows:
                if not _same(old_rows[rid], row):
                    raise StoreError(f"{part}: run {rid} is stored twice with different results; nothing was changed: move one chunk out of runs/")
                report(f"note: {part.name}: run {rid} is stored twice, identically: kept once")
                continue
            config3 = json.loads(row["config"])
            if format3.run_id(config3, row["seed"], row["data_seed"]) != rid:
                raise StoreError(f"{part}: run {rid}'s id does not match its stored config and seeds (not a format-3 run); nothing was changed")
            if row["config"] not in converted:
                converted[row["config"]] = config4(config3)
            cfg4 = converted[row["config"]]
            mapping[rid] = run_id(cfg4, row["seed"], row["data_seed"])
            old_rows[rid] = row
            keep.append(i)
            ids.append(rid)
        if not keep:
            continue
        table = table.take(keep)
        table = table.set_column(table.schema.get_field_index("run_id"), "run_id", pa.array([mapping[r] for r in ids]))
        cfgs = [json.dumps(converted[old_rows[r]["config"]], sort_keys=True) for r in ids]
        table = table.set_column(table.schema.get_field_index("config"), "config", pa.array(cfgs))
        weights = None
        wpart = root / "weights" / part.name
        if wpart.exists():
            w = pq.read_table(wpart)
            have = dict(zip(w.column("run_id").to_pylist(), w.column("weights").to_pylist()))
            if any(r in have for r in ids):
                got = [r for r in ids if r in have]
                weights = pa.table({"run_id": [mapping[r] for r in got], "weights": [have[r] for r in got]})
        out.write_chunk(table, weights)
        chunks += 1
        _step(f"chunk-{chunks}")
    if len(set(mapping.values())) != len(mapping):
        raise StoreError(f"{root}: two format-3 runs map to one format-4 id; nothing was changed (please report this)")
    _atomic_write(new / "experiment.json", json.dumps(meta4, indent=1).encode())
    if (root / "spec.toml").exists():
        shutil.copy2(root / "spec.toml", new / "spec.toml")
    _atomic_write(new / ID_MAP, json.dumps(mapping, indent=0, sort_keys=True).encode())
    return mapping, old_rows, chunks


def _verify(new: Path, mapping: dict[str, str], old_rows: dict[str, dict], root: Path) -> None:
    """The new folder against the old: every chunk sound, as many rows, ids mapped one to one, every other
    column of every run equal, weights kept."""
    store = Store(new)
    good, problems = store.check()
    if problems:
        raise StoreError(f"migration check failed, nothing was changed: {problems[0]}")
    new_rows = {r["run_id"]: r for path, _ in good for r in pq.read_table(path).to_pylist()}
    if len(new_rows) != len(old_rows) or set(new_rows) != set(mapping.values()):
        raise StoreError(f"migration check failed, nothing was changed: {len(new_rows)} runs written for {len(old_rows)} stored")
    for old_id, new_id in mapping.items():
        a = {k: v for k, v in old_rows[old_id].items() if k not in ("run_id", "config")}
        b = {k: v for k, v in new_rows[new_id].items() if k not in ("run_id", "config")}
        if not _same(a, b):
            raise StoreError(f"migration check failed, nothing was changed: run {old_id} (now {new_id}) reads back with other results")
    old_w = Store(root).weights_dir
    n_old = sum(pq.read_metadata(p).num_rows for p in old_w.glob("part-*.parquet")) if old_w.is_dir() else 0
    n_new = len(store.weights(new_rows))
    if n_new < min(n_old, len(mapping)):
        raise StoreError(f"migration check failed, nothing was changed: {n_new} runs' weights written for {n_old} stored")


def _swap(root: Path, stage: Path, keep_old: bool) -> int:
    """Move the verified new folder in, the old out; each step can be repeated after a kill."""
    new, old = stage / "new", stage / "old"
    old.mkdir(exist_ok=True)
    for name in ("runs", "weights"):
        if (new / name).exists():
            if (root / name).exists():
                os.replace(root / name, old / name)
                _step(f"{name}-moved")
            os.replace(new / name, root / name)
            _step(f"{name}-swapped")
    for name in ("manifest.jsonl", ID_MAP, "spec.toml"):
        if (new / name).exists():
            os.replace(new / name, root / name)
    if (new / "experiment.json").exists():
        if not (old / "experiment.json").exists():
            shutil.copy2(root / "experiment.json", old / "experiment.json")
        os.replace(new / "experiment.json", root / "experiment.json")  # the commit
        _step("committed")
    n = len(json.loads((root / ID_MAP).read_text())) if (root / ID_MAP).exists() else 0
    if keep_old:
        shutil.rmtree(root / "format3", ignore_errors=True)
        os.replace(old, root / "format3")
    shutil.rmtree(stage)
    return n
