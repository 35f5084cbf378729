"""Looking a detector up by name: the built-ins (`builtin`), an entry point, or a dotted path "module:name".

What an entry point or a dotted path names must be a `Detector` (what `@detector` makes) or a subclass of
`Detector` that builds with no arguments, checked before anything of it is called (the same check as a
world's: `worlds.registry.require_interface`); a plain function is refused with one line saying so."""

from __future__ import annotations

from importlib.metadata import entry_points

from ..worlds.registry import WorldError, _import, _one_line, require_interface  # the same lookup and check as a world's
from . import builtin  # noqa: F401  (registers the built-ins)
from .base import BUILTIN, ENTRY_POINT_GROUP, Detector, DetectorError


def get_detector(name: str) -> Detector:
    """The detector `name` stands for: built in, an entry point, or a dotted path "module:name"."""
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" in name:
        try:
            obj = _import(name)
        except WorldError as e:
            raise DetectorError(str(e)) from None
        return _as_detector(obj, name)
    eps = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name in eps:
        try:
            return _as_detector(eps[name].load(), name)
        except DetectorError:
            raise
        except Exception as e:
            raise DetectorError(f"entry point {name!r} ({eps[name].value}) failed to load: {type(e).__name__}: {e}") from None
    known = ", ".join(sorted([*BUILTIN, *eps]))
    raise DetectorError(f"unknown detector {name!r} (known: {known}; or a dotted path \"module:name\")")


def _as_detector(obj, label: str) -> Detector:
    """`obj` as a Detector: a Detector as it is, a subclass of Detector built with no arguments; anything else
    (a plain function included) is a DetectorError line naming what it is and what is expected."""
    require_interface(obj, repr(label), Detector, "deceptionlab.detect.Detector", DetectorError, instances="what @detector makes")
    if isinstance(obj, Detector):
        return obj
    try:
        made = obj()
    except Exception as e:  # a user's constructor: one line
        raise DetectorError(f"{label!r}: building {obj.__qualname__} with no arguments raised {_one_line(e)}") from None
    require_interface(made, f"{label!r}()", Detector, "deceptionlab.detect.Detector", DetectorError, instances="what @detector makes")
    return made
