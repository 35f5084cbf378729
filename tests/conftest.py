"""Shared fixtures: tiny specs that train in seconds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
