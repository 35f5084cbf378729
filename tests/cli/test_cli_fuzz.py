"""Every subcommand's arguments, fuzzed (issue 20): a command given at least one bad value answers with one
line on stderr and exit code 2, no traceback, and writes nothing. In this process (`cli.run_cli`), so that
hundreds of examples take seconds; bad values are drawn per option from its type (a number that is no number,
a path under a file, text no parser accepts), the other options at random, valid or not."""

from __future__ import annotations

import contextlib
import inspect
import io
import shutil
import typing
from enum import Enum
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from deceptionlab.cli import app, run_cli
from deceptionlab.sweep.migrate import migrate
from tests.conftest import REPO

COMMANDS = get_command(app).commands
FORMAT3 = REPO / "tests" / "data" / "format3"


def _kind(annotation) -> type:
    """int, float, str, bool, Path or an Enum, from an option's annotation (Optional[...] and list[...] unwrapped)."""
    while typing.get_origin(annotation) in (typing.Union, list, getattr(__import__("types"), "UnionType", None)):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _params(name: str) -> list[tuple[str, type, bool, bool]]:
    """(first option string or argument name, kind, is_flag, is_argument) of a command's parameters."""
    c = COMMANDS[name]
    sig = inspect.signature(c.callback, eval_str=True)
    return [(p.opts[0], _kind(sig.parameters[p.name].annotation), bool(getattr(p, "is_flag", False)), p.param_type_name == "argument") for p in c.params]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """A sandbox with a sound results folder, a spec, a plain file: what valid and invalid paths point at."""
    root = tmp_path_factory.mktemp("fuzz")
    results = root / "results"
    shutil.copytree(FORMAT3, results)
    migrate(results, report=lambda m: None)
    (root / "file.txt").write_text("not a folder")
    shutil.copy(FORMAT3 / "spec.toml", root / "spec.toml")
    return root


TEXT_JUNK = st.sampled_from(["", " ", "a:b:c", "[red]x[/red]", ":smile:", "x\ny", "\x00", "../..", "-", "1e999", "nan", "🙂", "=", ",,", "a=b=c", "boolean:", "probes:", "uniform:-1"])
NUM_JUNK = st.sampled_from(["x1", "", "1,5", "0x", "--", "1e", "tru", "[b]2[/b]"])  # no int or float parses these


def _bad(kind, places: Path):
    """Values no option of this kind accepts."""
    if kind in (int, float):
        return NUM_JUNK
    if kind is Path:
        return st.just(str(places / "file.txt" / "sub"))  # neither readable nor creatable
    if isinstance(kind, type) and issubclass(kind, Enum):
        return st.sampled_from(["tabel", "", "CSV ", "[b]json"])
    return st.sampled_from(["[red]x:b:[/]", "a:b:c\n", "\x00bad", ":smile:=1,,"])


def _any(kind, places: Path):
    """Values valid or not."""
    if kind is int:
        return st.one_of(st.integers(-10, 10).map(str), st.sampled_from(["1000000000000", "-0", "1.5", "true"]), NUM_JUNK)
    if kind is float:
        return st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["0.95", "nan", "inf", "-1"]), NUM_JUNK)
    if kind is Path:
        return st.sampled_from([str(places / "results"), str(places / "spec.toml"), str(places / "file.txt"), str(places / "nowhere"), str(places / "file.txt" / "sub")])
    if isinstance(kind, type) and issubclass(kind, Enum):
        return st.sampled_from([m.value for m in kind] + ["tabel"])
    return st.one_of(TEXT_JUNK, st.text(max_size=8))


@st.composite
def bad_command_lines(draw, places: Path) -> list[str]:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    params = _params(name)
    args, options = [name], []
    arguments = [p for p in params if p[3]]
    choices = [p for p in params if not p[2]]  # value-taking parameters: arguments and options
    bad = draw(st.sampled_from(choices)) if choices else None
    for opt, kind, _, is_arg in arguments:
        if is_arg and name in ("worlds",):  # an optional name: junk or nothing
            value = draw(_bad(str, places)) if bad and bad[0] == opt else None
        else:
            value = draw(_bad(kind, places)) if bad and bad[0] == opt else draw(_any(kind, places))
        if value is not None:
            args.append(value)
    for opt, kind, is_flag, is_arg in params:
        if is_arg:
            continue
        if bad and bad[0] == opt:
            options += [opt, draw(_bad(kind, places))]
        elif draw(st.integers(0, 3)) == 0:
            options += [opt] if is_flag else [opt, draw(_any(kind, places))]
    return args + options


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.name != ".lock"}


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_cli(argv)
        except SystemExit as e:  # pragma: no cover - the property below then fails with its message
            code = e.code
    return code, out.getvalue(), err.getvalue()


def test_every_subcommand_is_fuzzed():
    assert {"run", "show", "verify", "migrate", "paths", "report", "prior", "theory", "speed", "counting", "detect",
            "interventions", "persistence", "worlds"} <= set(COMMANDS)


@settings(max_examples=250, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(data=st.data())
def test_a_bad_argument_is_one_line_exit_2_and_writes_nothing(places, data, monkeypatch):
    monkeypatch.chdir(places)  # `report` writes report.html here by default
    argv = data.draw(bad_command_lines(places))
    before = _snapshot(places)
    code, out, err = _run(argv)
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: --workers ")]  # the cap is said first, at once
    assert code == 2, (argv, code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err[-2000:])
    assert "Traceback" not in err
    assert _snapshot(places) == before, (argv, "wrote", set(_snapshot(places)) ^ set(before))


@pytest.mark.parametrize("argv,message", [
    (["--device", "tpu"], "--device 'tpu': not a device this lab trains on (cpu, cuda, or cuda:N)"),
    (["--device", "meta"], "--device 'meta': not a device"),
    (["--device", "cuda:99"], "--device cuda:99: "),
])
def test_a_wrong_device_answers_in_one_line_at_once(places, argv, message, monkeypatch):
    """Refused before any work: the spec is never expanded into runs (how fast is a benchmark's business)."""
    import deceptionlab.sweep.experiment as experiment

    def planned(*a, **k):
        raise AssertionError("the runs were planned before the device was checked")

    monkeypatch.setattr(experiment, "expand", planned)
    out = places / "dev"
    code, _, err = _run(["run", str(FORMAT3 / "spec.toml"), "--out", str(out), *argv])
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_thousand_workers_are_capped_in_one_line(places, tmp_path):
    out = tmp_path / "many"
    shutil.copytree(places / "results", out)
    code, _, err = _run(["run", str(FORMAT3 / "spec.toml"), "--out", str(out), "--workers", "1000", "--no-show"])
    assert code == 0, err
    from deceptionlab.sweep.experiment import cores

    assert f"note: --workers 1000: capped at {cores()}, the cores of this machine" in err


def test_names_are_printed_literally(places, tmp_path):
    """Axis values such as "a:b:c" (an emoji code) or "[red]x[/red]" (markup) appear as written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deceptionlab.sweep import Store

    out = tmp_path / "[b]odd:b:"
    (out / "runs").mkdir(parents=True)
    shutil.copy(places / "results" / "experiment.json", out / "experiment.json")
    store = Store(out)
    for part in sorted((places / "results" / "runs").glob("part-*.parquet")):
        t = pq.read_table(part)
        shown = ["a:b:c" if v == "off" else "[red]x[/red]" for v in t.column("situational_awareness").to_pylist()]
        store.write_chunk(t.set_column(t.schema.get_field_index("situational_awareness"), "situational_awareness", pa.array(shown)))
    code, text, err = _run(["show", str(out)])
    assert code == 0, err
    assert "a:b:c" in text and "[red]x[/red]" in text and f"{out}" in text.replace("\n", "")
    assert "\U0001f171" not in text and "🅱" not in text
