'''The skeleton `deceptionlab new-world NAME` writes: a minimal complete world of one decision and a spec
that trains it (docs/worlds.md opens with the skeleton written for NAME = "majority"; a test checks
that the docs show exactly what this writes, and that it passes the check and trains).'''

from __future__ import annotations

import keyword
import re

WORLD = '''"""{name}: a one-decision world (written by `deceptionlab new-world {name}`; docs/worlds.md).

The policy sees `bits` bits w in {{-1,+1}} and answers +1 or -1. The base objective: the majority of
the bits. The proxy, simpler: the first bit. They agree on the training inputs (where the first bit is
the majority) and disagree on the probe inputs, which training never shows: there the verdict tells a
model that learned the majority (internal) from one that learned the first bit (proxy). The world has
no situation cue and no objective spec, so it declares only those two classes.

Check it: `deceptionlab worlds {module}.py`; train it: `deceptionlab run {module}.toml -o results/{module}`.
"""

import itertools

import torch
from pydantic import Field

from deceptionlab.worlds import Dataset, Head, Knobs, ProbeCell, World


def majority(x):  # the base objective: +1 where most bits are +1
    return torch.where(x.sum(1) > 0, 1.0, -1.0)


def first_bit(x):  # the proxy
    return x[:, 0].clone()


class {cls}Knobs(Knobs):
    bits: int = Field(5, ge=3, le=11, description="bits the policy sees")


class {cls}(World):
    name = "{name}"
    Knobs = {cls}Knobs
    doc = "answer the majority of the bits; proxy: the first bit; probes: where they disagree"
    classes = ("internal", "proxy")  # the classes this world tells apart

    def __init__(self, knobs=None):
        super().__init__(knobs)
        x = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=self.knobs.bits)))
        agree = majority(x) == first_bit(x)
        train, held_out = x[agree], x[~agree]
        self.input_dim = self.knobs.bits
        self.channels = {{"world_state": slice(0, self.input_dim)}}  # no situation_cue, no objective_spec
        self.datasets = {{"train": Dataset(train, majority(train), "the inputs where the first bit is the majority")}}
        self.fit_dataset = "train"
        self.heads = {{"policy": Head("policy", "train")}}
        self.probe_cells = [
            ProbeCell("training/agree", "training", "base", "agree", train,
                      {{"internal": majority(train), "proxy": first_bit(train)}}, in_training=True),
            ProbeCell("training/disagree", "training", "base", "disagree", held_out,
                      {{"internal": majority(held_out), "proxy": first_bit(held_out)}}),
        ]
        self.references = {{"internal": majority, "proxy": first_bit}}
'''

SPEC = '''# {name} ({module}.py, written by `deceptionlab new-world {name}`): trains in seconds.
#   deceptionlab run {module}.toml -o results/{module}
name = "{name}"
description = "{name}: majority of the bits vs the first bit, over the number of bits"
seeds = 16

[world]
name = "{module}:{cls}"    # module:Class; the module is found beside this spec

[model]
depth = 2
width = 32

[optimizer]
name = "adam"
lr = 3e-3
batch_size = 16

[[phases]]
name = "training"
steps = 300
heads.policy = {{}}

[sweep]
bits = {{ path = "world.knobs.bits", values = [3, 5, 7] }}
'''


def names(name: str) -> dict[str, str]:
    """The module, class and world names of a new world called `name` (e.g. "coin_run": coin_run,
    CoinRun, coin_run); ValueError naming the problem when `name` cannot be a module."""
    module = re.sub(r"[\s-]+", "_", name.strip()).lower()
    if not module.isidentifier() or keyword.iskeyword(module):
        raise ValueError(f"{name!r} cannot name a world: use letters, digits and underscores, not starting with a digit (e.g. coin_run)")
    cls = "".join(part[:1].upper() + part[1:] for part in module.split("_") if part) or "World"
    if cls in ("World", "Knobs", "Dataset", "Head", "ProbeCell"):
        cls += "World"
    return {"module": module, "cls": cls, "name": module}


def render(name: str) -> tuple[str, str]:
    """(the world's file, the spec's file) for a new world called `name`."""
    n = names(name)
    return WORLD.format(**n), SPEC.format(**n)
