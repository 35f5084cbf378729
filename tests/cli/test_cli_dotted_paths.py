"""A dotted path "module:Name" names user code; what it names must be the lab's interface, checked before any
of it is called (issue 20): a detector must be a `Detector` (what `@detector` makes) or a subclass of it, a
world a subclass of `World`, through one helper (`worlds.registry.require_interface`). Anything else, a plain
function first of all, is one line naming what it is and what is expected, exit code 2, nothing written."""

from __future__ import annotations

import contextlib
import io
import itertools

import pytest

from deceptionlab.cli import run_cli
from deceptionlab.detect import DetectorError
from deceptionlab.detect.registry import get_detector
from tests.conftest import tiny_spec_text

USER = '''
from dataclasses import dataclass
from pathlib import Path

from deceptionlab.detect import Detector, detector

CALLED = Path({marker!r})


def plain(model, inputs):
    CALLED.write_text("a plain function was called")
    return model.params[-2][:, :, 0].norm(dim=1)


@detector("decorated")
def decorated(model, inputs):
    return model.params[-2][:, :, 0].norm(dim=1)


@dataclass(frozen=True)
class Subclass(Detector):
    name: str = "subclass"
    score: object = decorated.score


class NeedsArguments(Detector):
    pass


class NotADetector:
    def __call__(self, model, inputs):
        CALLED.write_text("called")


def world_function(knobs=None):
    CALLED.write_text("a world function was called")


NUMBER = 3
'''


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli([str(a) for a in argv])
    return code, err.getvalue()


_NAMES = itertools.count()


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of user code on sys.path under a name of this test's own (a module imports once per process)."""
    name = f"user_code_{next(_NAMES)}"
    marker = tmp_path / "called.txt"
    (tmp_path / f"{name}.py").write_text(USER.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name, marker


@pytest.mark.parametrize("attr,what", [
    ("plain", "a function {m}.plain"),
    ("NotADetector", "class {m}.NotADetector"),
    ("NUMBER", "an int"),
])
def test_a_detector_path_naming_something_else_is_one_line_exit_2_nothing_written(user_module, tmp_path, attr, what):
    name, marker = user_module
    out = tmp_path / "detection"
    results = tmp_path / "results"
    results.mkdir()
    code, err = _run(["detect", results, "--detector", f"{name}:{attr}", "--out", out])
    expected = (f"error: '{name}:{attr}' is {what.format(m=name)}, not an instance of deceptionlab.detect.Detector "
                "(what @detector makes) or a subclass of it")
    assert code == 2 and err.strip().splitlines() == [expected], err
    assert not marker.exists() and not out.exists()


def test_a_detector_and_a_subclass_of_it_are_taken(user_module):
    name, marker = user_module
    assert get_detector(f"{name}:decorated").name == "decorated"
    assert get_detector(f"{name}:Subclass").name == "subclass"
    with pytest.raises(DetectorError, match=rf"^'{name}:NeedsArguments': building NeedsArguments with no arguments raised TypeError"):
        get_detector(f"{name}:NeedsArguments")
    assert not marker.exists()


def test_a_world_path_naming_a_function_is_one_line_exit_2_nothing_written(user_module, tmp_path):
    name, marker = user_module
    spec = tmp_path / "spec.toml"
    spec.write_text(tiny_spec_text(seeds=1).replace('name = "bitworld"', f'name = "{name}:world_function"')
                    .replace('[sweep]\nsituational_awareness = { path = "world.knobs.situational_awareness", values = ["off", "cue"] }\n', ""))
    out = tmp_path / "out"
    code, err = _run(["run", spec, "--out", out])
    assert code == 2 and err.strip().splitlines() == [
        f"error: {spec}: world.name: '{name}:world_function' is a function {name}.world_function, not a subclass of deceptionlab.worlds.World"], err
    assert not marker.exists() and not out.exists()


def test_the_refusal_names_modules_and_builtins_plainly():
    import os

    from deceptionlab.worlds import World
    from deceptionlab.worlds.registry import WorldError, require_interface

    for obj, what in ((os, "a module os"), (len, "a built-in function builtins.len"), ("x", "a str"), (None, "a NoneType")):
        with pytest.raises(WorldError, match=rf"^'p' is {what}, not a subclass of deceptionlab.worlds.World$"):
            require_interface(obj, "'p'", World, "deceptionlab.worlds.World", WorldError)
