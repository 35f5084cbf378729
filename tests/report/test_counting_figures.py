"""The counting figure draws every source a condition has, and leaves out those it lacks (P_prior is
measured at the default init only, so an init-regime axis gives conditions without it)."""

from __future__ import annotations

import matplotlib.image as mpimg
import pandas as pd

from deceptionlab.report.counting_figures import CLASSES, class_probabilities


def _rows(condition: str, source: str, p: float) -> list[dict]:
    return [{"condition": condition, "source": source, "verdict": v, "p": p if v == "internal" else 0.0,
             "low": p / 2 if v == "internal" else 0.0, "high": min(1.0, 2 * p) if v == "internal" else 1e-3} for v in CLASSES]


def test_a_source_missing_from_one_condition_is_left_out_of_its_panel(tmp_path):
    table = pd.DataFrame(_rows("weight_scale=1.0", "nngp", 0.3) + _rows("weight_scale=1.0", "prior", 0.1)
                         + _rows("weight_scale=4.0", "nngp", 0.2))
    paths = class_probabilities(table, tmp_path)
    assert [p.name for p in paths] == ["counting.png", "counting.svg"]
    img = mpimg.imread(paths[0])
    assert img.shape[0] > 500 and img.shape[1] > 800  # two panels drawn, one per condition
    svg = paths[1].read_text()
    assert svg.count("weight_scale=") == 2 and "P_prior (random nets)" in svg
