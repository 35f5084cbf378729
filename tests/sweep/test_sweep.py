"""Sweeps end to end through the real CLI: results, resumption after a kill, bad input, locking."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

import deceptionlab
from deceptionlab.sweep import Store
from tests.conftest import CLI, cli, tiny_spec_text


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny spec run once, uninterrupted, in this process, with two runs per chunk."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=6))
    out = root / "results"
    res = cli("run", spec, "--out", out, "--chunk-size", 2, "--workers", 1)
    assert res.returncode == 0, res.stderr
    return spec, out


def test_run_writes_one_row_per_run_readable_by_duckdb_and_pandas(finished):
    spec, out = finished
    df = deceptionlab.load(out)
    assert len(df) == 12 and df.run_id.is_unique
    assert set(df.situational_awareness) == {"off", "cue"}
    assert set(df.verdict) <= set(deceptionlab.VERDICTS)
    assert df.traj_step.map(list).map(lambda s: s[0] == 0 and s[-1] == 160).all()
    assert df.cells.map(len).eq(12).all()
    assert df.traj_loss_situational_awareness[df.situational_awareness == "off"].isna().all()
    for col in ("traj_decode_situation", "traj_decode_base_objective", "traj_deploy_score_deceptive"):
        assert df[col].map(len).eq(df.traj_step.map(len)).all()
        assert df[col].map(lambda t: all(0 <= v <= 1 for v in t)).all()
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/runs/*.parquet') WHERE fit").fetchall()[0][0]
    assert n == int(df.fit.sum())
    counts = Store(out).query("SELECT situational_awareness, count(*) AS n FROM runs GROUP BY 1 ORDER BY 1")
    assert counts.n.tolist() == [6, 6]


def test_rerun_skips_everything_and_changes_nothing(finished):
    spec, out = finished
    before = _digest(out / "runs")
    res = cli("run", spec, "--out", out, "--no-show")
    assert res.returncode == 0, res.stderr
    assert "0 runs trained, 12 already stored" in res.stderr
    assert _digest(out / "runs") == before


def test_same_spec_and_seed_give_the_same_results(finished, tmp_path):
    spec, out = finished
    other = tmp_path / "again"
    assert cli("run", spec, "--out", other, "--chunk-size", 2, "--no-show").returncode == 0
    a, b = deceptionlab.load(out), deceptionlab.load(other)
    cols = ["run_id", "verdict", "score_internal", "score_deceptive", "train_accuracy"]
    assert a[cols].equals(b[cols])


def test_killed_sweep_resumes_without_loss_or_duplicates(finished, tmp_path):
    spec, reference = finished
    out = tmp_path / "killed"
    proc = subprocess.Popen([*CLI, "run", str(spec), "--out", str(out), "--chunk-size", "2", "--no-show"], stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((out / "runs").glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parts = list((out / "runs").glob("part-*.parquet"))
    assert 2 <= len(parts) < 6, "the kill should land mid-sweep"
    partial = deceptionlab.load(out)
    assert len(partial) == 2 * len(parts)  # only whole chunks are ever visible
    res = cli("run", spec, "--out", out, "--no-show", "--chunk-size", "2")
    assert res.returncode == 0, res.stderr
    assert f"{12 - len(partial)} runs trained, {len(partial)} already stored" in res.stderr
    resumed, ref = deceptionlab.load(out), deceptionlab.load(reference)
    assert len(resumed) == 12 and resumed.run_id.is_unique
    merged = resumed.merge(ref, on="run_id", suffixes=("", "_ref"))
    assert len(merged) == 12
    assert (merged.verdict == merged.verdict_ref).all()
    assert (merged.score_deceptive - merged.score_deceptive_ref).abs().max() < 1e-6
    assert not list((out / "runs").glob(".tmp-*"))


def _truncate(data: bytes) -> bytes:
    return data[:100]


def _damage_mid_file(data: bytes) -> bytes:  # Parquet's own checks miss most such damage (or misread it silently)
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0x5A for b in data[mid : mid + 64]) + data[mid + 64 :]


@pytest.mark.parametrize("damage", [_truncate, _damage_mid_file])
def test_corrupt_chunk_is_detected_and_recomputed(finished, tmp_path, damage):
    spec, reference = finished
    out = tmp_path / "corrupt"
    assert cli("run", spec, "--out", out, "--chunk-size", 2, "--workers", 1, "--no-show").returncode == 0
    victim = sorted((out / "runs").glob("part-*.parquet"))[0]
    victim.write_bytes(damage(victim.read_bytes()))
    res = cli("run", spec, "--out", out, "--workers", 1, "--no-show")
    assert res.returncode == 0, res.stderr
    assert f"{victim.name} is damaged" in res.stderr and "its runs will be recomputed" in res.stderr
    assert victim.with_suffix(".corrupt").exists()
    assert "2 runs trained, 10 already stored" in res.stderr
    cols = ["run_id", "verdict", "score_internal", "score_deceptive", "train_accuracy"]
    assert deceptionlab.load(out)[cols].equals(deceptionlab.load(reference)[cols])


def test_show_formats(finished):
    _, out = finished
    res = cli("show", out, "--format", "json")
    rows = json.loads(res.stdout)
    assert {r["verdict"] for r in rows} == set(deceptionlab.VERDICTS)
    for cond in ("off", "cue"):
        mine = [r for r in rows if r["situational_awareness"] == cond]
        assert sum(r["count"] for r in mine) == 6
        assert all(r["low"] <= r["p"] <= r["high"] for r in mine)
    csv = cli("show", out, "--format", "csv").stdout.splitlines()
    assert csv[0] == "situational_awareness,verdict,count,n,p,low,high" and len(csv) == 1 + 2 * 6
    table = cli("show", out).stdout
    assert "P_SGD(verdict)" in table and "situational_awareness" in table


@pytest.mark.parametrize(
    "text,message",
    [
        ("name = 'x'\n[model\n", "malformed TOML"),
        (tiny_spec_text().replace('name = "bitworld"', 'name = "flatland"'), "world.name: unknown world 'flatland'"),
        (tiny_spec_text().replace("lr = 0.01", "lr = -3"), "optimizer.lr: Input should be greater than 0"),
        (tiny_spec_text().replace("[world]", "[world]\nknobs = { salience = 3 }"), "world.knobs.salience: unknown knob"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, text, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    res = cli("run", spec, "--out", tmp_path / "out")
    assert res.returncode == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_incompatible_results_folder_is_refused_untouched(finished, tmp_path):
    spec, out = finished
    before = _digest(out)
    changed = tmp_path / "changed.toml"
    changed.write_text(tiny_spec_text(seeds=6).replace("lr = 0.01", "lr = 0.02"))
    res = cli("run", changed, "--out", out)
    assert res.returncode == 2
    assert "optimizer.lr: differs from the spec that wrote results folder" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert _digest(out) == before
    assert cli("show", tmp_path / "nothing").returncode == 2


def test_more_seeds_extend_a_folder(finished, tmp_path):
    spec, out = finished
    more = tmp_path / "more.toml"
    more.write_text(tiny_spec_text(seeds=7))
    copy = tmp_path / "copy"
    assert cli("run", spec, "--out", copy, "--no-show").returncode == 0
    res = cli("run", more, "--out", copy, "--no-show")
    assert res.returncode == 0 and "2 runs trained, 12 already stored" in res.stderr


def test_a_second_writer_is_refused(finished):
    spec, out = finished
    with Store(out).lock():
        res = cli("run", spec, "--out", out)
    assert res.returncode == 2
    assert f"is in use by another run (pid {os.getpid()})" in res.stderr


def test_worlds_lists_knobs():
    res = cli("worlds")
    assert res.returncode == 0
    for knob in ("cue_copies", "cue_noise", "situational_awareness", "overseer_model"):
        assert knob in res.stdout


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path, tiny_spec):
    import torch

    if torch.cuda.is_available():
        res = cli("run", tiny_spec, "--out", tmp_path / "gpu", "--device", "cuda", "--no-show")
        assert res.returncode == 0, res.stderr
    else:
        res = cli("run", tiny_spec, "--out", tmp_path / "gpu", "--device", "cuda")
        assert res.returncode == 2 and "no CUDA device is available" in res.stderr


def test_one_worker_and_two_workers_give_the_same_runs(finished, tmp_path):
    spec, out = finished  # written in one process
    single = tmp_path / "two"
    assert cli("run", spec, "--out", single, "--chunk-size", 2, "--workers", 2, "--no-show").returncode == 0
    a, b = deceptionlab.load(out), deceptionlab.load(single)
    assert a.run_id.tolist() == b.run_id.tolist()
    assert a.verdict.tolist() == b.verdict.tolist()
    for col in ("score_internal", "score_corrigible", "score_deceptive", "score_proxy", "train_accuracy"):
        assert (a[col] - b[col]).abs().max() < 1e-6, col


def test_paths_command(finished, tmp_path):
    _, out = finished
    res = cli("paths", out, "--format", "csv", "--out", tmp_path / "p", "--no-plots")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("situational_awareness,n,verdict_entropy,score_variance,clusters")
    assert len(lines) == 3
    assert [line.split(":")[0] for line in res.stderr.splitlines()] == ["paths"] and "loss barriers" in res.stderr  # its stage, on stderr
    assert len(list((out / "cache").glob("paths-*"))) == 1  # the tables kept in the folder (sweep/cache.py)
    events = (tmp_path / "p" / "events.csv").read_text().splitlines()
    assert events[0].startswith("situational_awareness,n,n_events,p_situation_first,low,high,median_sa_step") and len(events) == 3
    table = cli("paths", out, "--out", tmp_path / "q", "--no-plots")
    assert "situation first" in table.stdout and "derailments" in table.stdout and "regime" in table.stdout
    assert "compliance gap along training" in table.stdout  # docs/deception.md
    missing = cli("paths", tmp_path / "nowhere")
    assert missing.returncode == 2 and "no such results folder" in missing.stderr and "Traceback" not in missing.stderr


def test_unwritable_results_folder_is_a_clear_error(tmp_path, tiny_spec):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = cli("run", tiny_spec, "--out", blocker / "sub")
    assert res.returncode == 2
    assert "Not a directory" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
