"""The structure docs/architecture.md promises: layers that import downwards only, and no import cycle
between modules. The graph is built from the source (every import statement, also those inside
functions), so a late import cannot hide an upward arrow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "deceptionlab"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("worlds",),
    ("models",),
    ("train",),
    ("judge",),
    ("families",),
    ("sweep",),
    ("measure",),
    ("theory",),
    ("detect",),
    ("claims",),
    ("report",),
    ("api",),
    ("cli", "__init__", "__main__"),
)
"""From the bottom: a module may import from its own layer and the layers below it, never above."""


def modules() -> dict[str, Path]:
    out = {}
    for p in (SRC / PACKAGE).rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> dict[str, set[str]]:
    """Module -> the lab's modules it imports (`from a import b` where a.b is a module counts as a.b)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, path, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:  # `import a.b.c` of a name inside a module: the module
                    t = t.rpartition(".")[0]
                if t.startswith(PACKAGE) and t != name:
                    graph[name].add(t)
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: in no layer of LAYERS (add its package to tests/test_architecture.py and docs/architecture.md)")


def test_every_module_has_a_layer():
    for m in modules():
        layer_of(m)


def test_imports_point_downwards():
    graph = import_graph()
    upward = sorted(f"{a} -> {b} ({LAYERS[layer_of(a)][0]} imports {LAYERS[layer_of(b)][0]})"
                    for a, bs in graph.items() for b in bs if layer_of(b) > layer_of(a))
    assert not upward, "imports that point upwards:\n" + "\n".join(upward)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_what_they_should():
    """The graph sees late imports, and the cycle finder finds a cycle (so a clean result means something)."""
    graph = import_graph()
    assert "deceptionlab.core.scoring" in graph["deceptionlab.worlds.base"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("deceptionlab.nowhere.module")


PROCESS_SETTINGS = ("mallopt", "set_num_threads", "set_flush_denormal", "sys.path.append", "sys.path.insert")
OWNERS = ("core/process.py", "cli/", "sweep/executors/")  # what owns a process may set it
SCOPED = {  # library code that changes a setting for one call and restores it in a finally block
    "measure/counting/sampler.py": "set_num_threads", "train/loop.py": "set_flush_denormal",
    "worlds/registry.py": "sys.path.append",  # a user's world folder, so its module imports in spawned workers too (docs/worlds.md)
}


def test_library_code_leaves_process_settings_alone():
    found = []
    for name, path in modules().items():
        rel = path.relative_to(SRC / PACKAGE).as_posix()
        if rel.startswith(OWNERS):
            continue
        text = path.read_text()
        for setting in PROCESS_SETTINGS:
            if setting in text and SCOPED.get(rel) != setting:
                found.append(f"{rel}: {setting}")
    assert not found, "process-wide settings in library code (set them in core.process, the CLI or an executor):\n" + "\n".join(found)


TESTS = Path(__file__).resolve().parent
TOP_LEVEL = {"test_architecture.py"}  # the whole package's structure, not one layer's


def test_the_tests_mirror_the_package_layout():
    """Each test file lies in tests/<layer>/ for the package it tests (tests/api/ for deceptionlab.api), so a
    newcomer finds a layer's tests beside its name; only this file, about the whole package, is at the top."""
    layers = {n for names in LAYERS for n in names if n not in ("__init__", "__main__")}
    stray = sorted(p.relative_to(TESTS).as_posix() for p in TESTS.glob("test_*.py") if p.name not in TOP_LEVEL)
    unknown = sorted(p.relative_to(TESTS).as_posix() for p in TESTS.glob("*/test_*.py") if p.parent.name not in layers)
    assert not stray, f"test files outside a layer's folder: {stray}"
    assert not unknown, f"test folders that name no layer of the package: {unknown}"
    packages = {p.name for p in (SRC / PACKAGE).iterdir() if p.is_dir() and any(p.glob("*.py"))} | {p.stem for p in (SRC / PACKAGE).glob("*.py") if not p.stem.startswith("_")}
    assert {p.parent.name for p in TESTS.glob("*/test_*.py")} <= packages
