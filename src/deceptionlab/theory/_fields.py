"""Dataclass plumbing shared by the theory's parameter classes: field docstrings, checked updates."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
from functools import cache


@cache
def field_docs(cls) -> dict[str, str]:
    """The one-line docstring written under each field of a dataclass (read from its source)."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for stmt, nxt in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[stmt.target.id] = str(nxt.value.value).strip()
    return docs


def checked(params, **changes):
    """`dataclasses.replace` that rejects unknown names and values outside a field's bounds.

    Bounds live in the field's metadata: `lo`, `hi` (inclusive) and `lo_open` (strictly above `lo`)."""
    fields = {f.name: f for f in dataclasses.fields(params)}
    for name, value in changes.items():
        if name not in fields:
            raise ValueError(f"unknown parameter {name!r} (known: {', '.join(fields)})")
        value = float(value)
        meta = fields[name].metadata
        lo, hi = meta.get("lo", -math.inf), meta.get("hi", math.inf)
        if not math.isfinite(value) or value < lo or value > hi or (meta.get("lo_open") and value == lo):
            where = f"{'(' if meta.get('lo_open') else '['}{lo:g}, {hi:g}]"
            raise ValueError(f"parameter {name}: {value:g} is outside {where}")
        changes[name] = value
    return dataclasses.replace(params, **changes)


def bounded(default: float, lo: float = 0.0, hi: float = math.inf, lo_open: bool = False):
    """A float field with inclusive bounds (`lo_open`: strictly above `lo`)."""
    return dataclasses.field(default=default, metadata={"lo": lo, "hi": hi, "lo_open": lo_open})
