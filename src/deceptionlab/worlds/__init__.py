"""Worlds: the environments and data of experiments, looked up by name."""

from __future__ import annotations

from .base import ALIGNED, CLASSES, Dataset, Head, Knobs, ProbeCell, World
from .bitworld import Bitworld
from .gridworld import Gridworld

REGISTRY: dict[str, type[World]] = {Bitworld.name: Bitworld, Gridworld.name: Gridworld}


def get_world(name: str) -> type[World]:
    """The world class registered under `name`; a ValueError listing the known worlds otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown world {name!r} (known: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


__all__ = ["ALIGNED", "CLASSES", "Dataset", "Head", "Knobs", "ProbeCell", "World", "REGISTRY", "get_world", "Bitworld", "Gridworld"]
