"""Options every command shares: --version, and --debug showing the traceback a one-line error hides."""

from __future__ import annotations

from typer.testing import CliRunner

import deceptionlab
from deceptionlab.cli import app


def test_version():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"deceptionlab {deceptionlab.__version__}"


def test_debug_shows_the_traceback_behind_the_one_line_error(tmp_path):
    missing = str(tmp_path / "nowhere")
    plain = CliRunner().invoke(app, ["show", missing])
    assert plain.exit_code == 2 and "Traceback" not in plain.output and "no such results folder" in plain.output
    debug = CliRunner().invoke(app, ["--debug", "show", missing])
    assert debug.exit_code == 2 and "Traceback" in debug.output and "StoreError" in debug.output
    assert "no such results folder" in debug.output.splitlines()[-1]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    from pathlib import Path

    out = tmp_path / "q"
    spec = Path(__file__).parents[2] / "experiments" / "quick.toml"
    res = CliRunner().invoke(app, ["run", str(spec), "--dry-run", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    text = res.stdout
    assert "128 in 8 conditions; 0 already stored, 128 to train" in text  # quick.toml: 2 x 2 x 2 conditions x 16 seeds
    assert "chunks      8 (up to 16 runs each)" in text and "in one process" in text and "per chunk" in text
    assert all(len(line) <= 80 for line in text.splitlines()[1:]), text


def test_dry_run_of_a_bad_spec_is_one_line(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "x"\nseeds = 0\n')
    res = CliRunner().invoke(app, ["run", str(spec), "--dry-run", "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
