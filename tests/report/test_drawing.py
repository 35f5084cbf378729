"""Drawing the report's figures (report/drawing.py and the small multiples of report/figures.py): figures
are drawn again only when what they show changed, and panels are
readable (labelled axes, legends outside the data, no empty panels, titles of at least 7 pt)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deceptionlab.report import drawing, figures


def _job(folder, frame, name="fig"):
    def call():
        path = folder / f"{name}.txt"
        previous = int(path.read_text().split()[0]) if path.exists() else 0
        path.write_text(f"{previous + 1} {frame.x.sum()}")  # how many times it was drawn, and from what
        return [path]

    return drawing.Job(name, call, folder, (frame, ["axis"]))


def test_a_figure_is_drawn_again_only_when_its_inputs_change(tmp_path, monkeypatch):
    frame = pd.DataFrame({"x": [1, 2], "traj": [np.arange(3.0), np.arange(3.0)]})  # a column of per-row arrays too
    jobs = [_job(tmp_path, frame, "a"), _job(tmp_path, frame.assign(x=[5, 5]), "b")]
    drawing.draw(jobs)
    drawing.draw(jobs)
    assert (tmp_path / "a.txt").read_text() == "1 3" and (tmp_path / "b.txt").read_text() == "1 10"
    changed = frame.copy()
    changed.at[0, "traj"] = np.array([0.0, 1.0, 9.0])
    out = drawing.draw([_job(tmp_path, changed, "a"), jobs[1]])
    assert (tmp_path / "a.txt").read_text() == "2 3" and (tmp_path / "b.txt").read_text() == "1 10"
    assert out == {"a": [tmp_path / "a.txt"], "b": [tmp_path / "b.txt"]}
    (tmp_path / "b.txt").unlink()
    drawing.draw(jobs[1:])
    assert (tmp_path / "b.txt").read_text() == "1 10"  # a missing file is drawn again
    monkeypatch.setenv("DECEPTIONLAB_NO_CACHE", "1")
    drawing.draw(jobs[1:])
    assert (tmp_path / "b.txt").read_text() == "2 10"  # asked to draw everything again


def _capture(monkeypatch):
    shown = []

    def keep(fig, out, name, tight=True):
        shown.append(fig)
        return [out / f"{name}.png"]

    monkeypatch.setattr(figures, "save", keep)
    return shown


def _curves(n_conditions: int) -> pd.DataFrame:
    rows = []
    for c in range(n_conditions):
        for step in (0, 100, 200):
            rows.append({"cue_copies": c, "situational_awareness": "off", "step": step, "ari_with_final": -0.4 if step == 0 else 1.0,
                         "accuracy": 0.5, "base_rate": 0.5})
    return pd.DataFrame(rows)


def test_panels_are_labelled_with_one_legend_outside_the_data(monkeypatch, tmp_path):
    shown = _capture(monkeypatch)
    figures.stability(_curves(6), ["cue_copies", "situational_awareness"], tmp_path)
    fig = shown[0]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 6 and len(fig.axes) == 8  # 2 rows of 4: the two unused panels hidden, not drawn empty
    assert all(ax.get_legend() is None for ax in axes) and len(fig.legends) == 1  # the legend is the figure's
    assert [bool(ax.get_ylabel()) for ax in axes] == [True, False, False, False, True, False]  # left column
    assert [bool(ax.get_xlabel()) for ax in axes] == [False, False, True, True, True, True]  # bottom of each column
    assert all(ax.title.get_fontsize() >= 7 for ax in axes)
    assert axes[0].get_title().startswith("cc=0 · sa=off")  # the condition in brief, its abbreviations under the title
    assert any("cc = cue_copies" in t.get_text() for t in fig.texts)
    assert all(ax.get_ylim()[0] < -0.4 for ax in axes)  # a negative ARI is not clipped
    assert {ax.get_xlim() for ax in axes} == {axes[0].get_xlim()}  # one x range for every panel
    plt.close(fig)


def test_a_panel_without_events_says_so(monkeypatch, tmp_path):
    from deceptionlab.measure import paths

    shown = _capture(monkeypatch)
    runs = pd.DataFrame({"run_id": ["a", "b"], "cue_copies": [1, 1], "traj_step": [np.array([0, 100])] * 2})
    monkeypatch.setattr(figures, "path_events", lambda runs, **kw: pd.DataFrame({"run_id": ["a", "b"], "sa_step": [np.nan] * 2, "objective_step": [np.nan] * 2}))
    assert paths.path_events is not None
    figures.event_times(runs, ["cue_copies"], tmp_path)
    texts = [t.get_text() for ax in shown[0].axes for t in ax.texts]
    assert texts == ["neither event in\nany of 2 runs"]
    plt.close(shown[0])


def test_short_names_are_initials_and_distinct():
    assert figures.short_names(["cue_copies", "situational_awareness", "seeds", "cue_count"]) == {
        "cue_copies": "cc", "situational_awareness": "sa", "seeds": "seeds", "cue_count": "cc'"}
    assert figures.brief({"a_b": 1, "c": "x", "d": 2}, per_line=2) == "ab=1 · c=x\nd=2"
