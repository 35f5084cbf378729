"""Shared fixtures: tiny specs that train in seconds; the command line; a reference sweep for fault tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import deceptionlab

TINY = """
name = "tiny"
seeds = {seeds}
log_every = 50

[world]
name = "bitworld"

[model]
depth = 2
width = 16

[optimizer]
name = "adam"
lr = 0.01
batch_size = 16

[[phases]]
name = "own_goal"
steps = 40
heads.policy = {{ data = "own_goal" }}
heads.situational_awareness = {{}}

[[phases]]
name = "training"
steps = {steps}
heads.policy = {{}}
heads.situational_awareness = {{}}

[sweep]
situational_awareness = {{ path = "world.knobs.situational_awareness", values = ["off", "cue"] }}
"""


def tiny_spec_text(seeds: int = 4, steps: int = 120) -> str:
    return textwrap.dedent(TINY.format(seeds=seeds, steps=steps))


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(tiny_spec_text())
    return p


REPO = Path(__file__).resolve().parents[1]

CLI = [sys.executable, "-m", "deceptionlab"]


def cli(*args, **kw) -> subprocess.CompletedProcess:
    """The real command line, run to completion."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


def start(*args, **kw) -> subprocess.Popen:
    """The real command line, started in the background (stderr piped)."""
    return subprocess.Popen([*CLI, *map(str, args)], stderr=subprocess.PIPE, text=True, **kw)


def wait_for(condition, timeout: float = 300.0, what: str = "condition"):
    """Poll `condition` until it returns something true, and return that."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def stored_parts(out: Path) -> int:
    return len(list((out / "runs").glob("part-*.parquet")))


COLS = ["run_id", "verdict", "score_internal", "score_corrigible", "score_deceptive", "score_proxy", "train_accuracy"]
N_RUNS = 16  # the reference sweep: 8 seeds x 2 conditions, in chunks of 2


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """(spec, results) of a sweep whose chunks take a noticeable while (so that a kill lands mid-chunk),
    run once in one process: what every faulty or distributed run of it must reproduce."""
    root = tmp_path_factory.mktemp("reference")
    spec = root / "slow.toml"
    spec.write_text(tiny_spec_text(seeds=8, steps=300))
    out = root / "results"
    res = cli("run", spec, "--out", out, "--chunk-size", 2, "--workers", 1, "--no-show")
    assert res.returncode == 0, res.stderr
    return spec, out


def assert_same_runs(out: Path, reference: Path) -> None:
    """Every run of the reference exactly once, each identical to the reference's; no temp file left."""
    got, ref = deceptionlab.load(out), deceptionlab.load(reference)
    assert len(got) == N_RUNS and got.run_id.is_unique
    assert got[COLS].equals(ref[COLS])
    assert not list(out.rglob(".tmp-*"))
