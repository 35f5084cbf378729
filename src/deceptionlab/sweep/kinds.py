"""Every spec kind behind one entry point: `load_spec` / `parse_spec` read a TOML spec of any kind
(`kind = "train"`, the default, or a measurement kind of `sweep.measurements`), and `expand`,
`fingerprint`, `axes_of`, `kind_of` treat them alike for the planner and the store."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import ValidationError

from . import spec as training
from .measurements import KINDS, MeasurementSpec, expand_measurement, measurement_fingerprint
from .spec import ExperimentSpec, Run, SpecError, _one_line, read_spec_file

SPEC_KINDS = ("train", *KINDS)

AnySpec = ExperimentSpec | MeasurementSpec


def parse_spec(raw: dict, source: str = "spec") -> AnySpec:
    """A spec of any kind from its parsed TOML; SpecError with one line naming the problem otherwise."""
    kind = raw.get("kind", "train")
    if kind == "train":
        return training.parse_spec({k: v for k, v in raw.items() if k != "kind"}, source)
    if kind not in KINDS:
        raise SpecError(f"{source}: kind: unknown spec kind {kind!r} (kinds: {', '.join(SPEC_KINDS)})")
    try:
        return KINDS[kind].model_validate(raw)
    except ValidationError as e:
        raise SpecError(f"{source}: {_one_line(e)}") from None


def load_spec(path: str | Path) -> AnySpec:
    """Read and validate a TOML spec of any kind; SpecError with one line naming the problem otherwise."""
    return parse_spec(read_spec_file(path), source=str(path))


def kind_of(spec: AnySpec) -> str:
    return "train" if isinstance(spec, ExperimentSpec) else spec.kind


def expand(spec: AnySpec) -> list[Run]:
    """Every run of the spec, whatever its kind."""
    return training.expand(spec) if isinstance(spec, ExperimentSpec) else expand_measurement(spec)


def fingerprint(spec: AnySpec) -> dict:
    """What a results folder pins (training specs: exactly as before measurement kinds existed)."""
    return training.fingerprint(spec) if isinstance(spec, ExperimentSpec) else measurement_fingerprint(spec)


def axes_of(spec: AnySpec) -> list[str]:
    """The columns that tell a spec's conditions apart: its sweep axes, or its kind's grid."""
    return list(spec.sweep) if isinstance(spec, ExperimentSpec) else spec.axes()


def baselines_of(spec: AnySpec) -> dict[str, str]:
    if not isinstance(spec, ExperimentSpec):
        return {}
    return {n: a.baseline for n, a in spec.sweep.items() if a.baseline is not None}


def _key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + " }"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def _without_none(v):
    if isinstance(v, dict):
        return {k: _without_none(x) for k, x in v.items() if x is not None}
    return [_without_none(x) for x in v] if isinstance(v, list) else v


def to_toml(raw: dict) -> str:
    """A spec built in code (a dict of parsed TOML) as TOML text, for the results folder's spec.toml:
    scalars first, then one table per dict, one array of tables per list of dicts; checked by reading it back.
    TOML has no null: a None value is left out (a spec field or knob left out takes its default)."""
    lines, tables = [], []
    for k, v in raw.items():
        if isinstance(v, dict) or (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)):
            tables.append((k, v))
        elif v is not None:
            lines.append(f"{k} = {_toml_value(v)}")
    for k, v in tables:
        for entry in v if isinstance(v, list) else [v]:
            lines += ["", f"[[{k}]]" if isinstance(v, list) else f"[{k}]"]
            lines += [f"{_key(kk)} = {_toml_value(x)}" for kk, x in entry.items() if x is not None]
    text = "\n".join(lines) + "\n"
    if tomllib.loads(text) != _without_none(raw):
        raise ValueError("to_toml: the spec does not read back the same")
    return text
