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
