"""Bounded work (issue 20): a sweep is estimated before anything is written; a chunk that cannot fit memory
is refused in one line; a sweep past an hour asks for --yes; the memory estimate is an upper bound on the
measured growth of a process's peak memory while it trains a chunk."""

from __future__ import annotations

import resource
import subprocess
import sys
import tomllib

import pytest

from deceptionlab.sweep import SpecError, parse_spec
from deceptionlab.sweep.experiment import CHUNK_OVERHEAD, NeedsConfirmation, check_cost, estimate

from .conftest import REPO, cli

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


def test_more_than_a_million_conditions_are_refused_at_once():
    raw = _raw(sweep={"lr": {"path": "optimizer.lr", "values": [1e-3 + i * 1e-7 for i in range(1001)]},
                      "wd": {"path": "optimizer.weight_decay", "values": [i * 1e-6 for i in range(1001)]}})
    with pytest.raises(SpecError, match="sweep: 1,002,001 conditions, more than 1,000,000"):
        parse_spec(raw)


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
