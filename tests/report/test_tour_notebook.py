"""examples/tour.ipynb executed end to end by nbclient (a Jupyter kernel of this Python) on a smaller copy of
the quick spec: every cell runs without error, and the outputs are the notebook's promises (verdict shares,
two figures, a DuckDB table, the report file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def test_the_tour_notebook_runs_on_the_quick_spec(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbclient (pip install -e .[test])")
    nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient (pip install -e .[test])")
    spec = tmp_path / "quick.toml"  # quick.toml at 2 seeds a condition, shorter phases: the same grid, 16 runs
    text = (ROOT / "experiments" / "quick.toml").read_text()
    text = re.sub(r"^seeds = \d+", "seeds = 2", text, flags=re.M).replace("steps = 1500", "steps = 300").replace("steps = 500", "steps = 100")
    spec.write_text(text.replace("values = [0, 500]", "values = [0, 100]"))
    out = tmp_path / "quick"
    monkeypatch.setenv("TOUR_SPEC", str(spec))
    monkeypatch.setenv("TOUR_OUT", str(out))
    nb = nbformat.read(ROOT / "examples" / "tour.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # verdict shares, compliance gap
    html = "\n".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert "mean_gap" in html and "verdict" in html  # the DuckDB table
    assert (out / "report.html").stat().st_size > 50_000 and "report.html" in html
    assert len(list((out / "runs").glob("*.parquet"))) >= 1
