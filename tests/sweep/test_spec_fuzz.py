"""Bad specs, fuzzed: every mutation of a valid spec either still is a valid spec (which then plans
without error) or gets a SpecError of one line; never another exception. A few through the real CLI:
exit code 2 and one line on stderr."""

from __future__ import annotations

import copy
import datetime as dt
import math
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deceptionlab.sweep import SpecError, parse_spec
from deceptionlab.sweep.experiment import plan
from deceptionlab.worlds import get_world
from tests.conftest import cli, tiny_spec_text

VALID = tomllib.loads(tiny_spec_text())
BITWORLD = get_world("bitworld")

# What TOML can hold, wrong in type or range for most fields.
junk = st.recursive(
    st.one_of(
        st.text(max_size=6), st.integers(-(10**12), 10**12), st.sampled_from([0, 1, -1, 2, 10**9]), st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, 1e-9, 1e30]),
        st.datetimes(min_value=dt.datetime(1970, 1, 1)), st.dates(), st.times(),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=4,
)
field_names = st.sampled_from(
    ["name", "seeds", "data_seeds", "sweep", "phases", "steps", "heads", "data", "weight", "world", "knobs", "model", "depth",
     "width", "optimizer", "lr", "momentum", "batch_size", "verdict", "threshold", "early", "log_every", "path", "values",
     "labels", *BITWORLD.Knobs.model_fields, *BITWORLD.all_heads]
) | st.text(min_size=1, max_size=8)
sweep_paths = st.sampled_from(
    ["optimizer.lr", "model.width", "phases.0.steps", "phases.1.steps", "phases.7.steps", "phases.x.steps", "phases",
     "world.knobs.cue_copies", "world.knobs.nothing", "world.name", "verdict.threshold", "seeds", "name", "sweep",
     "phases.0.heads.policy.weight", "phases.0.heads.dragon", "", ".", "model..width", "early.weight_noise"]
) | st.text(max_size=12)


def _nodes(node, path=()):
    """Every (path, container) inside the spec: dicts and lists, where a mutation can land."""
    yield path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        if isinstance(child, (dict, list)):
            yield from _nodes(child, (*path, key))


@st.composite
def mutated_specs(draw) -> dict:
    raw = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path, node = draw(st.sampled_from(list(_nodes(raw))))
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        what = draw(st.sampled_from(["replace", "delete", "add", "axis", "empty", "repeat"]))
        if what == "axis":  # a sweep axis with an arbitrary path, values and labels
            values = draw(st.lists(junk, max_size=3))
            axis = {"path": draw(sweep_paths), "values": values}
            if draw(st.booleans()):
                axis["labels"] = draw(st.lists(st.text(max_size=4), max_size=4))
            if not isinstance(raw.get("sweep"), dict):
                raw["sweep"] = {}
            raw["sweep"][draw(st.text(min_size=1, max_size=6))] = axis if draw(st.booleans()) else values
        elif what == "add" and isinstance(node, dict):
            node[draw(field_names)] = draw(junk)
        elif keys and what in ("replace", "empty"):
            key = draw(st.sampled_from(keys))
            node[key] = draw(junk) if what == "replace" else type(node[key])() if isinstance(node[key], (dict, list, str)) else 0
        elif keys and what == "delete":
            del node[draw(st.sampled_from(keys))]
        elif keys and what == "repeat":  # a list item twice (seeds, axis values, phases), a field's value into another field
            if isinstance(node, list):
                node.append(copy.deepcopy(node[draw(st.sampled_from(keys))]))
            else:
                node[draw(st.sampled_from(keys))] = copy.deepcopy(node[draw(st.sampled_from(keys))])
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
def test_every_bad_spec_is_a_one_line_spec_error(raw):
    try:
        spec = parse_spec(raw)
    except SpecError as e:
        message = str(e)
        assert message and "\n" not in message, message
        return
    if len(spec.seeds) * len(spec.data_seeds or [0]) * math.prod(len(a.values) for a in spec.sweep.values()) <= 256:
        chunks, seconds = plan(spec, set())  # still valid: it plans (worlds built, chunks sized) ...
        ids = [r.run_id for c in chunks for r in c]
        assert ids and len(set(ids)) == len(ids) and seconds >= 0  # ... and no run twice


def _spec_file(tmp_path, text: str | bytes):
    path = tmp_path / "bad.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


SWEEP = 'situational_awareness = { path = "world.knobs.situational_awareness", values = ["off", "cue"] }'


@pytest.mark.parametrize(
    "text,message",
    [
        (b"name = '\xff\xfe'", "not a TOML spec (not UTF-8 text at byte 8)"),
        (tiny_spec_text().replace(SWEEP, SWEEP.replace('"cue"]', '"cue"], labels = ["only"]')),
         "sweep.situational_awareness.labels: 1 labels for 2 values"),
        (tiny_spec_text().replace("world.knobs.situational_awareness", "phases.7.steps"),
         "sweep.situational_awareness.path: 'phases.7.steps': index '7' out of range"),
        (tiny_spec_text().replace('values = ["off", "cue"]', 'values = ["cue", "cue"]'),
         "sweep: conditions [situational_awareness=cue] and [situational_awareness=cue] are the same runs"),
        (tiny_spec_text().replace("[world]", '[world]\n"knobs\\nx" = 1'), "world.knobs\\nx: unknown field"),
    ],
    ids=["not-utf8", "label-count", "sweep-path", "same-runs-twice", "newline-in-a-key"],
)
def test_bad_specs_through_the_cli_are_one_line_and_exit_2(tmp_path, text, message):
    res = cli("run", _spec_file(tmp_path, text), "--out", tmp_path / "out")
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()
