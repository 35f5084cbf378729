"""Bounded work (issue 20): a sweep is estimated before anything is written; a chunk that cannot fit memory
is refused in one line; a sweep past an hour asks for --yes; the memory estimate is an upper bound on the
measured growth of a process's peak memory while it trains a chunk."""

from __future__ import annotations

import gc
import resource
import subprocess
import sys
import tomllib
import tracemalloc

import pytest

from deceptionlab.sweep import parse_spec
from deceptionlab.sweep.experiment import CHUNK_OVERHEAD, NeedsConfirmation, check_cost, estimate, plan
from deceptionlab.sweep.spec import expand
from tests.conftest import REPO, cli

SPEC = REPO / "tests" / "data" / "format3" / "spec.toml"


def _raw(**top):
    raw = tomllib.loads(SPEC.read_text())
    raw.update(top)
    return raw


def test_ten_million_seeds_show_their_estimate_and_ask_for_yes(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text(SPEC.read_text().replace("seeds = 2", "seeds = 10000000"))
    res = cli("run", big, "--out", tmp_path / "out")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "error: a large sweep: 40,000,000 runs in 4 conditions, about" in res.stderr and "pass --yes to start it" in res.stderr
    assert not (tmp_path / "out").exists()
    with pytest.raises(NeedsConfirmation):
        check_cost(parse_spec(_raw(seeds=10_000_000)), None)
    assert check_cost(parse_spec(_raw(seeds=10_000_000)), None, yes=True).runs == 40_000_000


def test_a_chunk_that_cannot_fit_memory_is_refused_in_one_line(tmp_path):
    wide = tmp_path / "wide.toml"
    wide.write_text(SPEC.read_text().replace("width = 8", "width = 4096").replace("depth = 1", "depth = 16"))
    limit = 4 << 30  # an address-space cap (ulimit -v 4 GB): a chunk of 2 such models needs about 10 GB
    res = subprocess.run([sys.executable, "-m", "deceptionlab", "run", str(wide), "--out", str(tmp_path / "out"), "--chunk-size", "2"],
                         capture_output=True, text=True, timeout=300, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "Traceback" not in res.stderr
    assert "error: a chunk of 2 runs of [situational_awareness=cue, stopping=False] needs about 10." in res.stderr  # the largest chunk
    assert "lower --chunk-size, or the model's width or depth" in res.stderr
    assert not (tmp_path / "out").exists()


def _million(tmp_path):
    big = tmp_path / "million.toml"
    lr = ", ".join(repr(1e-3 + i * 1e-7) for i in range(1001))
    wd = ", ".join(repr(i * 1e-6) for i in range(1001))
    big.write_text(SPEC.read_text().split("[sweep]")[0] + f"[sweep]\nlr = {{ path = \"optimizer.lr\", values = [{lr}] }}\n"
                   f"wd = {{ path = \"optimizer.weight_decay\", values = [{wd}] }}\n")
    return big


def test_more_than_a_million_conditions_show_their_estimate_and_ask_for_yes(tmp_path):
    """Read at once (validated on a sample; every point when planned), estimated from a sample, and started only with --yes."""
    big = _million(tmp_path)
    res = cli("run", big, "--out", tmp_path / "out")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "error: a large sweep: 2,004,002 runs in 1,002,001 conditions, about" in res.stderr
    assert "(from 256 of them, spread over the grid)" in res.stderr and "pass --yes to start it" in res.stderr
    assert not (tmp_path / "out").exists()
    spec = parse_spec(tomllib.loads(big.read_text()))
    with pytest.raises(NeedsConfirmation, match="1,002,001 conditions"):
        check_cost(spec, None)
    assert check_cost(spec, None, yes=True).conditions == 1_002_001


def _grid(n_lr: int, n_wd: int, seeds: int = 2):
    return parse_spec(_raw(seeds=seeds, sweep={"lr": {"path": "optimizer.lr", "values": [1e-3 + i * 1e-7 for i in range(n_lr)]},
                                               "wd": {"path": "optimizer.weight_decay", "values": [i * 1e-6 for i in range(n_wd)]}}))


def _traced(f):
    """(result, bytes still traced after f returned, peak bytes traced while f ran), above what was traced before."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        out = f()
        gc.collect()
        now, peak = tracemalloc.get_traced_memory()
        return out, now - before, peak - before
    finally:
        tracemalloc.stop()


def test_planning_a_large_grid_streams_in_bounded_memory_and_resume_skips_stored_runs():
    """Planning keeps per condition a few hundred bytes (its chunks' seeds and a 64-bit digest), not its runs; its
    peak (a condition's worlds and configs, built and dropped) stays far under what the list of all runs holds
    (measured with tracemalloc on the same spec)."""
    small, large = _grid(4, 5), _grid(12, 10)
    plan(small, set())  # warm: worlds' caches, compiled regexes and pydantic's schemas are not the plan's
    runs, listed, _ = _traced(lambda: expand(small))
    per_condition_listed = listed / 20
    del runs
    (chunks, _), kept, peak = _traced(lambda: plan(large, set()))
    print(f"\nper condition: the list of runs {per_condition_listed / 1024:.1f} KB, the plan {kept / 120:.0f} B; "
          f"planning's peak {peak / 2**20:.2f} MB, the list of all 240 runs about {120 * per_condition_listed / 2**20:.2f} MB")
    assert kept / 120 < per_condition_listed / 10
    # the peak is what the plan keeps plus one condition's transient worlds and configs (about 1 MB here), whatever
    # the grid's size; the list of a million-condition grid's runs would hold about 10 GB (10 KB a condition, above)
    assert peak < kept + (3 << 20)
    assert chunks.total == 240 and chunks.pending == 240
    ids = sorted(r.run_id for r in expand(large))
    assert sorted(r.run_id for c in chunks for r in c) == ids  # the chunks made from the plan are the spec's runs, each once
    stored = set(ids[::3])
    resumed, _ = plan(large, stored)
    left = [r.run_id for c in resumed for r in c]
    assert resumed.total == 240 and resumed.pending == len(left) == 240 - len(stored) and not stored & set(left)
    labels = list(dict.fromkeys(r.condition.label for r in expand(large)))
    assert all(labels[c.condition_index] == r.condition.label for c in resumed for r in c)  # stored as condition_index


def test_planning_says_how_far_it_is(monkeypatch):
    from deceptionlab.sweep import experiment

    monkeypatch.setattr(experiment, "PLAN_REPORT_SECONDS", 0.0)
    lines = []
    plan(_grid(3, 2), set(), message=lines.append)
    assert lines[0].startswith("planning: 1 of 6 conditions (17%, ") and lines[-1].startswith("planning: 6 of 6 conditions (100%, ")
    assert len(lines) == 6


PEAK = """
import gc, json, os, sys, threading, time
from deceptionlab.sweep import expand, parse_spec
from deceptionlab.sweep.experiment import build_world, chunk_bytes, train_chunk

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

raw = json.loads(sys.argv[1])
runs = expand(parse_spec(raw))
train_chunk(runs[:1])  # warm: what a first chunk compiles or caches once per process is not the chunk's
gc.collect()
base, peak, done = rss(), [0], threading.Event()

def watch():  # the resident set, sampled every 2 ms while the chunk trains
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

t = threading.Thread(target=watch)
t.start()
train_chunk(runs)
done.set()
t.join()
print(base, max(peak[0], rss()), chunk_bytes(runs[0].config, build_world(runs[0].config), len(runs)))
"""


@pytest.mark.parametrize("width,depth,members", [(64, 2, 16), (256, 3, 32)])
def test_the_memory_estimate_bounds_the_measured_peak(width, depth, members):
    import json

    raw = _raw(model={"depth": depth, "width": width}, seeds=members, sweep={}, save_weights=False)
    raw["phases"][1]["steps"] = 40
    est = estimate(parse_spec(raw))
    assert est.chunk_runs == members and est.runs == members
    out = subprocess.run([sys.executable, "-c", PEAK, json.dumps(raw)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    base, peak, estimated = map(int, out.stdout.split())
    assert estimated == est.chunk_bytes
    print(f"width {width} depth {depth} x{members}: before {base / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB, estimate {estimated / 2**20:.0f} MB")
    chunk = estimated - CHUNK_OVERHEAD  # the chunk's own part; the process's footprint (CHUNK_OVERHEAD) varies with the machine
    grew = peak - base
    assert grew <= chunk + (64 << 20), "the estimate must bound what training the chunk adds"
    assert chunk <= 3 * grew + (64 << 20), "and not by a wild margin"
