"""Results format 4 (docs/results-format.md): run ids hash the whole normalised config; format-3 folders are
converted by `deceptionlab migrate`, verified run by run, resumable after a kill at any step."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import deceptionlab
from deceptionlab.sweep import Store, StoreError, expand, format3, load_spec
from deceptionlab.sweep.migrate import config4, fingerprint4, migrate
from deceptionlab.sweep.spec import RESULTS_VERSION, fingerprint, run_id
from tests.conftest import REPO, cli

FORMAT3 = REPO / "tests" / "data" / "format3"
FLAGSHIP_V3 = REPO / "tests" / "data" / "flagship_v3.toml"
QUICK = REPO / "experiments" / "quick.toml"


def _read(folder) -> list[dict]:
    """Every row of every Parquet file in `folder` (chunks differ in schema: a column of nulls in one)."""
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def _digest(ids) -> str:
    return hashlib.sha256("".join(ids).encode()).hexdigest()[:16]


def _fp_digest(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


def test_format4_run_ids_and_fingerprints_are_frozen():
    # digests of every run id of these specs under results format 4: a change means stored results change meaning
    assert RESULTS_VERSION == 4
    old = load_spec(FLAGSHIP_V3)
    assert _digest(r.run_id for r in expand(old)) == "dad364f470127544"  # with model.ponder_penalty (the speed specs' field) in every config
    assert _digest(r.run_id for r in expand(load_spec(QUICK))) == "5a5465ea69cbdd02"
    assert _fp_digest(fingerprint(old)) == "c15f23277fa3"


def test_the_frozen_format3_rules_reproduce_the_ids_format3_stored():
    # the digests test_interventions froze while format 3 was current
    old = load_spec(FLAGSHIP_V3)
    assert _digest(format3.run_ids(old)) == "7f4ef7909cac603b"
    assert _digest(format3.run_ids(load_spec(QUICK))) == "027736611539d9b9"
    assert _fp_digest(format3.fingerprint(old)) == "f09843d2c983"
    stored = _read(FORMAT3 / "runs")  # and the ids in the stored format-3 folder, row by row
    assert all(format3.run_id(json.loads(r["config"]), r["seed"], r["data_seed"]) == r["run_id"] for r in stored)
    assert sorted(r["run_id"] for r in stored) == sorted(format3.run_ids(load_spec(FORMAT3 / "spec.toml")))


@pytest.mark.parametrize("spec", [FLAGSHIP_V3, QUICK], ids=["flagship_v3", "quick"])
def test_the_migration_maps_every_old_flagship_id_to_its_new_id(spec):
    exp = load_spec(spec)
    runs = expand(exp)
    old = format3.run_ids(exp)
    converted, norms = {}, {}
    for r, old_id in zip(runs, old):
        if id(r.config) not in norms:  # a condition's runs share one config object
            norms[id(r.config)] = format3.omit(r.config.normalised())  # what a format-3 row stores in its config column
        c3 = norms[id(r.config)]
        key = json.dumps(c3, sort_keys=True)
        converted.setdefault(key, config4(c3))
        assert format3.run_id(c3, r.seed, r.data_seed) == old_id
        assert run_id(converted[key], r.seed, r.data_seed) == r.run_id
    assert len(set(old)) == len(old) and not set(old) & {r.run_id for r in runs}  # every id changed, one to one
    assert fingerprint4(format3.fingerprint(exp)) == fingerprint(exp)


@pytest.fixture
def v3(tmp_path):
    out = tmp_path / "v3"
    shutil.copytree(FORMAT3, out)
    return out


def _old_rows() -> dict[str, dict]:
    return {r["run_id"]: r for r in _read(FORMAT3 / "runs")}


def _old_weights() -> dict[str, bytes]:
    return {r["run_id"]: r["weights"] for r in _read(FORMAT3 / "weights")}


def assert_migrated(out):
    """`out` is tests/data/format3 in format 4: same runs, new ids, every verdict, score and weight kept."""
    assert json.loads((out / "experiment.json").read_text())["version"] == 4
    assert not (out / ".migrate").exists() and not list(out.rglob(".tmp-*"))
    mapping = json.loads((out / "format3-ids.json").read_text())
    spec = load_spec(out / "spec.toml")
    assert sorted(mapping.values()) == sorted(r.run_id for r in expand(spec))
    assert json.loads((out / "experiment.json").read_text())["fingerprint"] == fingerprint(spec)
    new = {r["run_id"]: r for r in _read(out / "runs")}
    old = _old_rows()
    assert len(new) == len(old) == 8
    for old_id, row in old.items():
        got = new[mapping[old_id]]
        for col, v in row.items():
            if col not in ("run_id", "config"):
                assert json.dumps(got[col], default=repr) == json.dumps(v, default=repr), col
        assert json.loads(got["config"])["phases"][0]["algorithm"] == "supervised"  # the whole config now
        assert json.loads(got["config"])["early_stopping"]["enabled"] == row["stopping"]  # format 3 omitted it when off
    weights = Store(out).weights(new)
    assert {old_id: weights[mapping[old_id]] for old_id in old} == _old_weights()
    assert Store(out).check(fresh=True)[1] == []


def test_migrate_converts_a_format3_folder_and_keeps_every_run(v3):
    res = cli("show", v3)
    assert res.returncode == 2 and f"convert it once with `deceptionlab migrate {v3}`" in res.stderr
    res = cli("migrate", v3)
    assert res.returncode == 0, res.stderr
    assert "8 runs migrated to results format 4" in res.stdout
    assert_migrated(v3)
    loaded = deceptionlab.load(v3)
    mapping = json.loads((v3 / "format3-ids.json").read_text())
    old = _old_rows()
    assert dict(zip(loaded.run_id, loaded.verdict)) == {mapping[k]: r["verdict"] for k, r in old.items()}
    again = cli("migrate", v3)
    assert again.returncode == 0 and "already results format 4; nothing to migrate" in again.stdout
    res = cli("run", v3 / "spec.toml", "--out", v3, "--no-show")  # the migrated folder resumes as format 4
    assert res.returncode == 0 and "0 runs trained, 8 already stored" in res.stderr, res.stderr


KILL = "import sys; from deceptionlab.sweep.migrate import migrate; migrate(sys.argv[1])"


@pytest.mark.parametrize("step", ["chunk-2", "verified", "runs-moved", "weights-swapped", "committed"])
def test_a_migration_killed_at_any_step_resumes(v3, step):
    proc = subprocess.run([sys.executable, "-c", KILL, str(v3)], env={**os.environ, "DECEPTIONLAB_KILL_AT": step}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    meta = json.loads((v3 / "experiment.json").read_text())  # always one experiment.json, old or new
    if meta["version"] == 3 and (v3 / "runs").exists() and not (v3 / ".migrate" / "VERIFIED").exists():
        assert sorted(p.name for p in (v3 / "runs").iterdir()) == sorted(p.name for p in (FORMAT3 / "runs").iterdir())  # old untouched
    messages = []
    counts = migrate(v3, report=messages.append)
    assert counts["resumed"] and messages and "interrupted" in messages[0]
    assert_migrated(v3)


def test_keep_old_keeps_the_format3_files(v3):
    migrate(v3, report=lambda m: None, keep_old=True)
    assert sorted(p.name for p in (v3 / "format3" / "runs").iterdir()) == sorted(p.name for p in (FORMAT3 / "runs").iterdir())
    assert json.loads((v3 / "format3" / "experiment.json").read_text())["version"] == 3


def test_an_unknown_future_format_is_refused_in_one_line(v3):
    meta = json.loads((v3 / "experiment.json").read_text())
    (v3 / "experiment.json").write_text(json.dumps({**meta, "version": 99}))
    for args in (("migrate", v3), ("show", v3), ("run", FORMAT3 / "spec.toml", "--out", v3, "--no-show")):
        res = cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.strip().splitlines() == [f"error: {v3}: written by results format 99, which this lab (format 4) does not know: use the deceptionlab that wrote it"]
    with pytest.raises(StoreError, match="results format 99"):
        deceptionlab.load(v3)
    assert sorted(p.name for p in (v3 / "runs").iterdir()) == sorted(p.name for p in (FORMAT3 / "runs").iterdir())


def test_a_damaged_format3_chunk_stops_the_migration_with_nothing_changed(v3):
    victim = sorted((v3 / "runs").glob("part-*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:-5])
    with pytest.raises(StoreError, match=f"{victim.name}: damaged .*nothing was changed"):
        migrate(v3, report=lambda m: None)
    assert json.loads((v3 / "experiment.json").read_text())["version"] == 3 and not (v3 / "manifest.jsonl").exists()
