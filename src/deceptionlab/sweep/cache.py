"""Measurements of a results folder kept in the folder (`RESULTS/cache/`), so that a report or an
analysis read twice computes them once.

A cached entry is a set of tables under a name (e.g. "paths"), stored as Parquet in
`cache/<name>-<key>/`. Its key digests everything the tables depend on: the folder's manifest (which
chunks it holds), the ids of the runs measured, the measurement's parameters, the lab's version and
the source of the measuring code (`deceptionlab.measure`, `judge`, `theory`, `core`), so that a sweep that gains runs, another
threshold or a changed measurement never reads a stale entry. A folder that cannot be written (a
received, read-only one) is measured as if no cache existed.

Columns of Python objects (e.g. an axis whose values are booleans and missing values) are stored as
JSON text and decoded on reading, so a table comes back equal to the one computed (no pickle: a results
folder may come from someone else).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

import pandas as pd

from ..core.memo import source_digest

CACHE = "cache"


def _version() -> str:
    """The installed lab's version (from its metadata: the package itself is a layer above)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deceptionlab")
    except PackageNotFoundError:
        return "unknown"


def cache_key(root: str | Path, run_ids, params: dict) -> str:
    """The key of a measurement of the runs `run_ids` of the folder `root` with `params`."""
    from .store import MANIFEST

    h = hashlib.sha256()
    manifest = Path(root) / MANIFEST
    h.update(manifest.read_bytes() if manifest.exists() else b"")
    h.update("\n".join(sorted(map(str, run_ids))).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(_version().encode())
    h.update(source_digest(("measure", "judge", "theory", "core")).encode())
    return h.hexdigest()[:20]


def cached_tables(root: str | Path, name: str, run_ids, params: dict, compute: Callable[[], dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """The tables `compute()` returns, read from `root`/cache when an entry with the same key is there, else
    computed and stored there (replacing older entries of `name`)."""
    if os.environ.get("DECEPTIONLAB_NO_CACHE"):
        return compute()
    folder = Path(root) / CACHE
    key = cache_key(root, run_ids, params)
    entry = folder / f"{name}-{key}"
    if (entry / "tables.json").exists():
        try:
            return _read(entry)
        except Exception:  # a damaged entry is measured again (and replaced below)
            pass
    tables = compute()
    try:
        _write(entry, tables)
        for old in folder.glob(f"{name}-*"):
            if old != entry and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    except OSError:  # a read-only folder: measured, not kept
        pass
    return tables


def _write(entry: Path, tables: dict[str, pd.DataFrame]) -> None:
    tmp = entry.with_name(f".tmp-{entry.name}-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    try:
        index = {}
        for i, (name, df) in enumerate(tables.items()):
            objects = [str(c) for c in df.columns if df[c].dtype == object]
            encoded = df.reset_index(drop=True).assign(**{c: df[c].map(lambda v: json.dumps(v, default=str)).to_numpy() for c in objects})
            encoded.columns = [str(c) for c in encoded.columns]
            encoded.to_parquet(tmp / f"{i}.parquet", index=False)
            index[name] = {"file": f"{i}.parquet", "json": objects}
        (tmp / "tables.json").write_text(json.dumps(index))
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read(entry: Path) -> dict[str, pd.DataFrame]:
    index = json.loads((entry / "tables.json").read_text())
    out = {}
    for name, meta in index.items():
        df = pd.read_parquet(entry / meta["file"])
        for c in meta["json"]:
            df[c] = df[c].map(json.loads).astype(object)
        out[name] = df
    return out
