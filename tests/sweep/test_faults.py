"""Faults with real processes: a worker killed mid-chunk, the whole sweep killed while its workers run,
two `run`s on one results folder, a disk that fills up. (A killed in-process sweep, damaged chunk
files and a folder in use are in test_sweep.py; Ray workers in test_ray.py.)"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import deceptionlab
from tests.conftest import CLI, COLS, N_RUNS, assert_same_runs, cli, start, stored_parts, wait_for


def worker_pids(parent: int) -> list[int]:
    """The spawned worker processes of `parent` (its children running multiprocessing's spawn_main)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                pids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):  # exited while we looked
            continue
    return pids


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_killed_mid_chunk_costs_a_retry_not_a_run(reference, tmp_path):
    spec, ref = reference
    out = tmp_path / "killed-worker"
    proc = start("run", spec, "--out", out, "--chunk-size", 2, "--workers", 2, "--no-show")
    wait_for(lambda: stored_parts(out) >= 1, what="a first chunk")  # both workers are busy from here on
    victim = wait_for(lambda: worker_pids(proc.pid), what="a worker")[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "a worker process died mid-chunk (killed by SIGKILL); its 2 runs are trained again (attempt 2 of 3)" in err
    assert f"{N_RUNS} runs trained, 0 already stored" in err
    assert_same_runs(out, ref)


def test_a_sweep_killed_with_its_workers_leaves_no_orphans_and_resumes(reference, tmp_path):
    spec, ref = reference
    out = tmp_path / "killed-sweep"
    proc = start("run", spec, "--out", out, "--chunk-size", 2, "--workers", 2, "--no-show")
    wait_for(lambda: stored_parts(out) >= 2, what="two chunks")
    workers = worker_pids(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not any(alive(p) for p in workers), timeout=30, what="the orphaned workers to stop")
    partial = stored_parts(out)
    assert 2 <= partial < N_RUNS // 2, "the kill should land mid-sweep"
    res = cli("run", spec, "--out", out, "--workers", 1, "--no-show", "--chunk-size", 2)
    assert res.returncode == 0, res.stderr
    assert f"{N_RUNS - 2 * partial} runs trained, {2 * partial} already stored" in res.stderr
    assert_same_runs(out, ref)


def test_a_second_run_on_a_folder_in_use_is_refused_and_the_first_completes(reference, tmp_path):
    spec, ref = reference
    out = tmp_path / "shared"
    first = start("run", spec, "--out", out, "--chunk-size", 2, "--workers", 1, "--no-show")
    lock = out / ".lock"
    wait_for(lambda: lock.exists() and lock.read_text() == str(first.pid), what="the first run to hold the lock")
    first.send_signal(signal.SIGSTOP)  # hold it mid-sweep, lock held, however fast this machine is
    try:
        second = cli("run", spec, "--out", out, "--chunk-size", 2, "--workers", 1, "--no-show")
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        f"error: results folder {out} is in use by another run (pid {first.pid}); wait for it or use another --out"
    )
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert f"{N_RUNS} runs trained, 0 already stored" in err
    assert_same_runs(out, ref)


# -- a full disk: a real small filesystem where this process may mount one, else ENOSPC at the write -------

INJECT_ENOSPC = """
import errno, os, sys
import pyarrow.parquet as pq

real, calls = pq.write_table, [0]

def write_table(table, where, *args, **kwargs):  # the third chunk file finds the disk full, half written
    calls[0] += 1
    if calls[0] >= 3:
        with open(where, "wb") as f:
            f.write(b"PAR1 half a chunk")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))
    return real(table, where, *args, **kwargs)

pq.write_table = write_table
from deceptionlab.cli import main
sys.argv[0] = "deceptionlab"
main()
"""


@pytest.fixture
def small_disk(reference, tmp_path):
    """(folder, command) where the disk fills up after a few chunks: a tmpfs with room for the folder's small
    files and about 3.5 chunk files when mounting works (root), else the real CLI with ENOSPC raised by its
    third Parquet write."""
    disk = tmp_path / "disk"
    disk.mkdir()
    chunk = max(p.stat().st_size for p in (reference[1] / "runs").glob("part-*.parquet"))
    size = 4096 * (3 + int(3.5 * chunk) // 4096)
    if os.geteuid() == 0 and shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
        if mounted.returncode == 0:
            try:
                yield disk, CLI
            finally:
                subprocess.run(["umount", "-l", str(disk)], check=False)
            return
    yield disk, [sys.executable, "-c", INJECT_ENOSPC]


def test_a_full_disk_is_one_clear_line_and_earlier_chunks_survive(reference, small_disk, tmp_path):
    spec, ref = reference
    disk, command = small_disk
    out = disk / "results"
    res = subprocess.run([*command, "run", str(spec), "--out", str(out), "--chunk-size", "2", "--workers", "2", "--no-show"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {out}: {os.strerror(errno.ENOSPC)}; the chunks stored until now are kept")
    assert "Traceback" not in res.stderr
    assert not list(out.rglob(".tmp-*")), "a half-written chunk is left behind"
    stored = stored_parts(out)
    assert 1 <= stored < N_RUNS // 2
    kept = deceptionlab.load(out)  # every stored chunk reads back whole
    assert len(kept) == 2 * stored and kept.run_id.is_unique
    assert kept[COLS].equals(deceptionlab.load(ref)[COLS].set_index("run_id").loc[kept.run_id].reset_index()[COLS])
    roomy = tmp_path / "roomy"  # space again: the same folder, moved, resumes
    shutil.copytree(out, roomy)
    res = cli("run", spec, "--out", roomy, "--chunk-size", 2, "--workers", 1, "--no-show")
    assert res.returncode == 0, res.stderr
    assert f"{N_RUNS - 2 * stored} runs trained, {2 * stored} already stored" in res.stderr
    assert_same_runs(roomy, ref)


def test_a_temp_file_left_by_a_killed_writer_is_removed_on_resume(tmp_path):
    import deceptionlab
    from tests.conftest import tiny_spec_text

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(seeds=1))
    out = tmp_path / "r"
    (out / "runs").mkdir(parents=True)
    (out / "weights").mkdir()
    torn = [out / "runs" / ".tmp-part-deadbeef.parquet", out / "weights" / ".tmp-part-deadbeef.parquet"]
    for t in torn:
        t.write_bytes(b"PAR1 half a chunk")
    runs = deceptionlab.run(spec, out)
    assert len(runs) > 0 and not any(t.exists() for t in torn)
