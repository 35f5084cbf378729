"""The registry of model families: each family module registers itself here when `families` is imported."""

from __future__ import annotations

from .base import Family

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family
