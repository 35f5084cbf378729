"""The measurement cache of a results folder (sweep/cache.py): measured once, read back equal, measured
again when the runs, the parameters or the folder change, and never in the way of a folder it cannot write."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deceptionlab.sweep.cache import CACHE, cached_tables
from deceptionlab.sweep.store import MANIFEST


def _tables() -> dict[str, pd.DataFrame]:
    return {
        "plain": pd.DataFrame({"a": [1, 2, 3], "p": [0.5, np.nan, 1.0], "s": ["x", "y", "z"]}),
        "mixed": pd.DataFrame({"axis": pd.Series([True, np.nan, False], dtype=object), "n": [1, 2, 3]}),  # parquet alone turns NaN into False
        "empty": pd.DataFrame(),
    }


def _counted():
    """A compute function that returns `_tables()` and the list it appends to on every call."""
    calls = []

    def compute():
        calls.append(1)
        return _tables()

    return compute, calls


def test_measured_once_and_read_back_equal(tmp_path):
    (tmp_path / MANIFEST).write_text("one chunk\n")
    compute, calls = _counted()
    first = cached_tables(tmp_path, "paths", ["r1", "r2"], {"threshold": 0.9}, compute)
    second = cached_tables(tmp_path, "paths", ["r2", "r1"], {"threshold": 0.9}, compute)  # the same runs in another order
    assert len(calls) == 1
    for name, df in _tables().items():
        pd.testing.assert_frame_equal(second[name], df, check_dtype=False, check_column_type=False)
    assert second["mixed"].axis.tolist()[0] is True and second["mixed"].axis.isna().tolist() == [False, True, False]
    assert first.keys() == second.keys()


def test_new_runs_parameters_or_chunks_measure_again(tmp_path):
    (tmp_path / MANIFEST).write_text("one chunk\n")
    compute, calls = _counted()
    cached_tables(tmp_path, "paths", ["r1"], {"threshold": 0.9}, compute)
    cached_tables(tmp_path, "paths", ["r1", "r3"], {"threshold": 0.9}, compute)
    cached_tables(tmp_path, "paths", ["r1", "r3"], {"threshold": 0.8}, compute)
    (tmp_path / MANIFEST).write_text("one chunk\nanother chunk\n")
    cached_tables(tmp_path, "paths", ["r1", "r3"], {"threshold": 0.8}, compute)
    assert len(calls) == 4
    assert len(list((tmp_path / CACHE).glob("paths-*"))) == 1  # older entries of the name are replaced


def test_a_damaged_entry_is_measured_again(tmp_path):
    compute, calls = _counted()
    cached_tables(tmp_path, "paths", ["r1"], {}, compute)
    entry = next((tmp_path / CACHE).glob("paths-*"))
    (entry / "0.parquet").write_bytes(b"not parquet")
    again = cached_tables(tmp_path, "paths", ["r1"], {}, compute)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(again["plain"], _tables()["plain"])


def test_a_folder_that_cannot_hold_a_cache_is_measured_without_one(tmp_path):
    (tmp_path / CACHE).write_text("a file where the cache folder would go")
    compute, calls = _counted()
    for _ in range(2):
        out = cached_tables(tmp_path, "paths", ["r1"], {}, compute)
        pd.testing.assert_frame_equal(out["plain"], _tables()["plain"])
    assert len(calls) == 2
    assert (tmp_path / CACHE).read_text().startswith("a file")
