"""Seeding: every generator of a run derives from the run's own seed and a purpose ("init", "data",
"own_goal", ...), so purposes are independent and a run is the same alone or inside a chunk."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose of one run, independent across purposes."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8], "little") >> 1


def generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, purpose))
