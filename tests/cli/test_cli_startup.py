"""The command line starts without the lab's heavy libraries (issue 20): `--help`, a refused `--device` and
a capped `--workers` answer before torch, pandas, pyarrow, duckdb or matplotlib are imported, and
`import deceptionlab` imports none of them until a public name is used (PEP 562). How fast that is, is
benchmarks/bench_cli.py's business."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("torch", "pandas", "pyarrow", "duckdb", "matplotlib", "scipy", "ray")
SPEC = REPO / "tests" / "data" / "format3" / "spec.toml"

# Runs the command line on argv in a fresh interpreter; a finder on sys.meta_path writes "IMPORT torch" to
# stderr the moment torch is first imported (so a test sees what was said before it), and at the end the
# heavy modules loaded are printed as JSON on the last line of stdout.
WRAPPER = """
import json, sys

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print("IMPORT torch", file=sys.stderr, flush=True)
            sys.meta_path.remove(self)
        return None

sys.meta_path.insert(0, Watch())
from deceptionlab.cli import run_cli
code = run_cli(sys.argv[1:])
sys.stdout.flush()
sys.stderr.flush()
print(json.dumps({"code": code, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


def _cli(*argv, cwd=None) -> tuple[int, list[str], str, str]:
    res = subprocess.run([sys.executable, "-c", WRAPPER, *map(str, argv)], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert res.returncode == 0, res.stderr
    last = json.loads(res.stdout.strip().splitlines()[-1])
    return last["code"], last["heavy"], res.stdout, res.stderr


def test_help_imports_no_heavy_library():
    code, heavy, out, err = _cli("--help")
    assert code == 0 and heavy == [] and "IMPORT torch" not in err
    for command in ("run", "show", "theory", "report", "detect", "counting", "verify"):
        assert command in out


@pytest.mark.parametrize("device", ["tpu", "meta", "cuda:x", ""])
def test_a_wrong_device_is_one_line_exit_2_before_torch(tmp_path, device):
    out = tmp_path / "out"
    code, heavy, _, err = _cli("run", SPEC, "--out", out, "--device", device)
    assert code == 2 and heavy == []
    assert err.strip().splitlines() == [f"error: --device {device!r}: not a device this lab trains on (cpu, cuda, or cuda:N)"]
    assert not out.exists()


def test_an_unknown_executor_is_one_line_exit_2_before_torch(tmp_path):
    code, heavy, _, err = _cli("run", SPEC, "--out", tmp_path / "out", "--executor", "slurm")
    assert code == 2 and heavy == [] and len(err.strip().splitlines()) == 1 and "'slurm' is not one of 'local', 'ray'" in err
    assert not (tmp_path / "out").exists()


def test_a_thousand_workers_are_capped_before_torch_is_imported(tmp_path):
    """The cap is said first; then the spec (missing here) is refused in one line, nothing written."""
    from deceptionlab.core.devices import cores

    code, _, _, err = _cli("run", tmp_path / "missing.toml", "--out", tmp_path / "out", "--workers", 1000)
    lines = err.strip().splitlines()
    assert code == 2
    assert lines[0] == f"note: --workers 1000: capped at {cores()}, the cores of this machine"
    assert lines[1] == "IMPORT torch" and lines[2].startswith("error: ") and "cannot read spec" in lines[2] and len(lines) == 3
    assert not (tmp_path / "out").exists()


def test_cuda_is_checked_with_torch_only_when_asked_for(tmp_path):
    import torch

    code, heavy, _, err = _cli("run", SPEC, "--out", tmp_path / "out", "--device", "cuda:99")
    assert "torch" in heavy  # asking for cuda needs torch to know
    if not torch.cuda.is_available():
        assert code == 2 and err.strip().splitlines()[-1] == "error: --device cuda:99: no CUDA device is available on this machine"
    else:
        assert code == 2 and "error: --device cuda:99: this machine has" in err
    assert not (tmp_path / "out").exists()


def test_import_deceptionlab_is_lazy_and_complete():
    """Nothing heavy on import; every public name resolves; dir() lists them; `dl.detect` stays the function
    once the subpackage deceptionlab.detect is imported."""
    probe = """
import json, sys, types
import deceptionlab as dl
before = sorted(m for m in %r if m in sys.modules)
listed = set(dir(dl))
import deceptionlab.detect.base
resolved = {n: type(getattr(dl, n)).__name__ for n in dl.__all__}
print(json.dumps({"before": before, "missing": sorted(set(dl.__all__) - listed), "resolved": resolved,
                  "detect": callable(dl.detect) and not isinstance(dl.detect, types.ModuleType),
                  "version": dl.__version__, "unknown": not hasattr(dl, "no_such_name")}))
""" % (HEAVY,)
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["before"] == [] and got["missing"] == [] and got["detect"] and got["unknown"]
    assert "module" not in got["resolved"].values() and len(got["resolved"]) == len(set(got["resolved"]))
    assert got["resolved"]["CountingSettings"] == "type" and got["resolved"]["run"] == "function"


def test_the_executor_names_the_cli_lists_are_the_executors():
    from deceptionlab.cli import experiments
    from deceptionlab.sweep.executors import EXECUTORS

    assert experiments.EXECUTORS == EXECUTORS


def test_the_choices_the_cli_lists_are_the_lab_s():
    from deceptionlab.cli._common import Penalty
    from deceptionlab.models.ponder import PENALTIES

    assert tuple(p.value for p in Penalty) == PENALTIES
