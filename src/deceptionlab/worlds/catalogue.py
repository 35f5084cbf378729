"""The built-in worlds described without building them: `catalogue.json` beside this file holds each one's
name, doc, knobs (name, default, meaning) and heads, so `deceptionlab worlds` lists them without importing
torch (under a second; building gridworld alone takes one). It is written by `python -m
deceptionlab.worlds.catalogue` and a test fails when it differs from the classes (tests/worlds)."""

from __future__ import annotations

import json
from pathlib import Path

PATH = Path(__file__).with_name("catalogue.json")


def describe(cls) -> dict:
    """What `deceptionlab worlds` prints of a world class: its name, doc, knob rows and heads."""
    return {"name": cls.name, "doc": cls.doc, "knobs": [list(row) for row in cls.describe_knobs()], "heads": list(cls.all_heads)}


def live() -> list[dict]:
    """The built-in worlds as their classes describe themselves now."""
    from .registry import REGISTRY

    return [describe(cls) for cls in REGISTRY.values()]


def write(path: Path = PATH) -> None:
    path.write_text(json.dumps(live(), indent=1) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {PATH}")
