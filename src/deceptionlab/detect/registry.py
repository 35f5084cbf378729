"""Looking a detector up by name: the built-ins (`builtin`), an entry point, or a dotted path "module:name"."""

from __future__ import annotations

from importlib.metadata import entry_points

from ..worlds.registry import WorldError, _import  # the same lookup as a world's
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
    if isinstance(obj, Detector):
        return obj
    if callable(obj):
        return Detector(label, obj, bool(getattr(obj, "privileged", False)), (getattr(obj, "__doc__", "") or "").strip().split("\n")[0])
    raise DetectorError(f"{label!r} is a {type(obj).__name__}, not a Detector or a function (model, inputs) -> scores")
