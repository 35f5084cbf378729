"""Reads as safe as writes (issue 20): every chunk verified against the manifest, no run counted twice, one
experiment per folder decided under the lock. The folder under test is tests/data/format3 migrated to format 4
(no training needed); only the tests that repair a folder train (two runs of a depth-1 width-8 model)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import deceptionlab
from deceptionlab.sweep import Store, StoreError
from deceptionlab.sweep.migrate import migrate
from tests.conftest import REPO, cli, start, tiny_spec_text, wait_for

FORMAT3 = REPO / "tests" / "data" / "format3"
SPEC = FORMAT3 / "spec.toml"
COLS = ["run_id", "verdict", "score_internal", "score_deceptive", "train_accuracy"]


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> Path:
    """A sound format-4 folder of 8 runs in 4 chunks, with weights."""
    out = tmp_path_factory.mktemp("sound") / "results"
    shutil.copytree(FORMAT3, out)
    migrate(out, report=lambda m: None)
    return out


@pytest.fixture
def folder(sound, tmp_path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(sound, out)
    return out


def _chunk(out: Path, i: int = 0) -> Path:
    return sorted((out / "runs").glob("part-*.parquet"))[i]


def _one_line_refusal(res, *needles):
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    for n in needles:
        assert n in res.stderr, res.stderr
    assert res.stdout == ""  # no number at all


def test_a_sound_folder_verifies_and_loads(sound):
    res = cli("verify", sound)
    assert res.returncode == 0, res.stderr
    assert "4 chunks, 8 runs, every one matching its checksum" in res.stdout
    assert len(deceptionlab.load(sound)) == 8


def test_a_tampered_chunk_valid_parquet_with_false_verdicts_is_refused(folder):
    victim = _chunk(folder)
    t = pq.read_table(victim)
    forged = t.set_column(t.schema.get_field_index("verdict"), "verdict", pa.array(["deceptive"] * t.num_rows))
    pq.write_table(forged, victim)  # valid Parquet, same name: only the checksum tells
    assert pq.read_table(victim).column("verdict").to_pylist() == ["deceptive"] * t.num_rows
    with pytest.raises(StoreError, match=f"{victim.name}: its bytes do not match the checksum in the manifest"):
        deceptionlab.load(folder)
    _one_line_refusal(cli("show", folder), victim.name, "damaged or altered", f"deceptionlab verify {folder}")
    res = cli("show", folder, "--skip-damaged", "--format", "csv")  # asked for: left out, named, never read
    assert res.returncode == 0 and f"warning: {victim}" in res.stderr
    shown = res.stdout.splitlines()
    assert sum(int(line.split(",")[3]) for line in shown[1:] if line.split(",")[2] == "deceptive") == 0
    assert sum(int(line.split(",")[4]) for line in shown[1:] if line.split(",")[2] == "internal") == 6  # n: 8 runs less the 2 left out
    v = cli("verify", folder)
    assert v.returncode == 1 and victim.name in v.stderr and "repair:" in v.stderr


def test_a_forged_chunk_under_a_correct_hash_name_is_foreign(folder):
    victim = _chunk(folder)
    t = pq.read_table(victim)
    forged = t.set_column(t.schema.get_field_index("verdict"), "verdict", pa.array(["deceptive"] * t.num_rows))
    victim.unlink()
    Store(folder.parent / "elsewhere").write_chunk(forged)  # named by its own hash, as `run` would name it
    stray = next((folder.parent / "elsewhere" / "runs").glob("part-*.parquet"))
    shutil.copy(stray, folder / "runs" / stray.name)
    good, problems = Store(folder).check()
    assert sorted(p.kind for p in problems) == ["missing", "unlisted"] and len(good) == 3
    assert any(f"{stray.name}: a chunk the manifest does not list" in str(p) for p in problems)
    with pytest.raises(StoreError, match=r"\(and 1 more problems\)"):
        deceptionlab.load(folder)


def test_every_single_flipped_bit_is_caught(folder):
    victim = _chunk(folder, 1)
    data = victim.read_bytes()
    rng = random.Random(0)
    for pos in rng.sample(range(len(data) * 8), 64):
        flipped = bytearray(data)
        flipped[pos // 8] ^= 1 << (pos % 8)
        victim.write_bytes(bytes(flipped))
        good, problems = Store(folder).check(fresh=True)
        assert [p.kind for p in problems] == ["damaged"] and len(good) == 3, pos
    victim.write_bytes(data)
    assert Store(folder).check(fresh=True)[1] == []
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(flipped))
    res = cli("verify", folder)
    assert res.returncode == 1 and f"problem: {victim}: its bytes do not match" in res.stderr


def test_a_truncated_chunk_is_one_line_from_show_load_and_report(folder):
    victim = _chunk(folder, 2)
    victim.write_bytes(victim.read_bytes()[:100])
    _one_line_refusal(cli("show", folder), victim.name)
    _one_line_refusal(cli("paths", folder, "--no-plots", "--out", folder.parent / "p"), victim.name)
    with pytest.raises(StoreError, match="do not match the checksum"):
        deceptionlab.load(folder)


def test_a_stray_copy_is_refused_on_read_and_removed_by_run(folder):
    victim = _chunk(folder)
    copy = victim.with_name(victim.stem + " (copy).parquet")
    shutil.copy(victim, copy)
    with pytest.raises(StoreError, match=r"a byte-for-byte copy of part-.*not in the manifest"):
        deceptionlab.load(folder)
    _one_line_refusal(cli("show", folder), copy.name)
    res = cli("run", SPEC, "--out", folder, "--no-show")
    assert res.returncode == 0, res.stderr
    assert f"removed {copy.name}: a byte-for-byte copy of {victim.name}" in res.stderr
    assert "0 runs trained, 8 already stored" in res.stderr and not copy.exists()
    assert len(deceptionlab.load(folder)) == 8


def _rechunked(folder: Path, where: Path) -> list[Path]:
    """The folder's runs written again one run per chunk (as `--chunk-size 1` would), into `where`."""
    rows = pq.read_table(_chunk(folder))
    store = Store(where)
    return [store.write_chunk(rows.slice(i, 1)) for i in range(rows.num_rows)]


def test_chunks_of_another_chunk_size_count_no_run_twice(folder, tmp_path):
    ref = deceptionlab.load(folder)[COLS]
    extra = _rechunked(folder, tmp_path / "other")
    for p in extra:  # copied in as files: unlisted
        shutil.copy(p, folder / "runs" / p.name)
    with pytest.raises(StoreError, match="a chunk the manifest does not list"):
        deceptionlab.load(folder)
    with open(folder / "manifest.jsonl", "a") as f:  # listed too, as two writers without the lock would have
        f.write((tmp_path / "other" / "manifest.jsonl").read_text())
    with pytest.raises(StoreError, match=r"run [0-9a-f]{16} is stored twice \(also in part-"):
        deceptionlab.load(folder)
    res = cli("run", SPEC, "--out", folder, "--no-show")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("every one of its runs is stored, identically, in another chunk") == 2
    assert "0 runs trained, 8 already stored" in res.stderr
    assert deceptionlab.load(folder)[COLS].equals(ref) and cli("verify", folder).returncode == 0


def test_run_moves_a_damaged_chunk_aside_and_recomputes_it(folder):
    ref = deceptionlab.load(folder)[COLS]
    victim = _chunk(folder, 3)
    victim.write_bytes(victim.read_bytes()[:-10])
    res = cli("run", SPEC, "--out", folder, "--no-show", "--chunk-size", 2)
    assert res.returncode == 0, res.stderr
    assert f"{victim.name} is damaged" in res.stderr and "2 runs trained, 6 already stored" in res.stderr
    got = deceptionlab.load(folder)[COLS]
    assert got.run_id.tolist() == ref.run_id.tolist() and got.verdict.tolist() == ref.verdict.tolist()
    assert (got.score_deceptive - ref.score_deceptive).abs().max() < 1e-6
    assert cli("verify", folder).returncode == 0


def test_a_healthy_but_unreadable_chunk_is_not_called_damaged(folder):
    victim = _chunk(folder)
    kept = folder.parent / "kept.parquet"
    os.replace(victim, kept)
    victim.mkdir()  # what the lab cannot read (as root, too): an error to fix, not damage to quarantine
    res = cli("run", SPEC, "--out", folder, "--no-show")
    _one_line_refusal(res, f"{victim}: cannot be read", "not damaged")
    assert victim.is_dir() and not victim.with_suffix(".corrupt").exists()
    victim.rmdir()
    os.replace(kept, victim)
    assert cli("verify", folder).returncode == 0


def test_a_folder_with_runs_but_no_experiment_json_is_refused(folder):
    (folder / "experiment.json").unlink()
    res = cli("run", SPEC, "--out", folder, "--no-show")
    _one_line_refusal(res, "holds runs but no experiment.json", f"deceptionlab verify {folder}")
    v = cli("verify", folder)
    assert v.returncode == 1 and "repair:" in v.stderr
    _one_line_refusal(cli("show", folder), "no experiment.json")


HOLD = """
import sys, time
from deceptionlab.sweep import Store
with Store(sys.argv[1]).lock():
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_removed_lock_file_does_not_let_a_second_run_in(folder):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (folder / ".lock").unlink()
        before = sorted(p.name for p in folder.rglob("*"))
        res = cli("run", SPEC, "--out", folder, "--no-show")
        _one_line_refusal(res, "is in use by another run")
        assert sorted(p.name for p in folder.rglob("*") if p.name != ".lock") == [n for n in before if n != ".lock"]
    finally:
        holder.kill()
        holder.wait()
    assert len(deceptionlab.load(folder)) == 8


def test_a_stale_lock_is_taken_over(folder):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (folder / ".lock").write_text(dead)  # its pid is gone: nothing holds the folder
    res = cli("run", SPEC, "--out", folder, "--no-show")
    assert res.returncode == 0, res.stderr
    assert "0 runs trained, 8 already stored" in res.stderr


def test_two_specs_racing_for_one_folder_leave_one_experiment(tmp_path):
    """A spec that plans slowly (a million seeds) holds the folder while it plans; a fast other spec started
    meanwhile is refused, not pooled with it. And the other way round, the slow one is refused."""
    slow, fast = tmp_path / "slow.toml", tmp_path / "fast.toml"
    slow.write_text(tiny_spec_text(seeds=1_000_000))
    fast.write_text(tiny_spec_text(seeds=1).replace("lr = 0.01", "lr = 0.02"))
    out = tmp_path / "race"
    first = start("run", slow, "--out", out, "--no-show", "--yes")
    try:
        wait_for(lambda: (out / ".lock").exists() and (out / ".lock").read_text() == str(first.pid), timeout=120, what="the slow run's lock")
        second = cli("run", fast, "--out", out, "--no-show")
        assert second.returncode == 2 and "is in use by another run" in second.stderr, second.stderr
    finally:
        first.kill()
        first.communicate()
    meta = json.loads((out / "experiment.json").read_text()) if (out / "experiment.json").exists() else None
    assert meta is None or meta["fingerprint"]["optimizer"]["lr"] == 0.01
    assert not list((out / "runs").glob("part-*.parquet")) if (out / "runs").exists() else True
    other = tmp_path / "race2"  # the fast one first: the slow one, later, is refused by the fingerprint
    assert cli("run", fast, "--out", other, "--no-show").returncode == 0
    late = cli("run", slow, "--out", other, "--no-show", "--yes")
    assert late.returncode == 2 and "optimizer.lr: differs from the spec that wrote results folder" in late.stderr
    assert all(json.loads(c)["optimizer"]["lr"] == 0.02 for c in deceptionlab.load(other).config)


def test_an_older_folder_is_judged_by_the_current_rule_when_read(sound):
    """Chunks written before verdicts rested on held-out cells carry no `verdict_cells`: reading them judges
    their stored decisions again (verdicts and class scores on the held-out cells), so that a folder's old
    and new rows are judged alike; the chunk on disk is left as it was."""
    raw = pd.read_parquet(_chunk(sound, 0))
    assert "verdict_cells" not in raw
    got = deceptionlab.load(sound)
    assert set(got.verdict_cells) == {"held_out"}
    row = got.set_index("run_id").loc[raw.run_id.iloc[0]]
    stored = raw.set_index("run_id").loc[raw.run_id.iloc[0]]
    assert abs(row.score_deceptive - stored.score_deceptive) > 1e-3  # the seen cell no longer counts
    assert "verdict_cells" not in pd.read_parquet(_chunk(sound, 0))
