"""spurious: a core feature and a simpler background feature that agree in training (docs/worlds.md).

After Shah et al. 2020 ("The Pitfalls of Simplicity Bias in Neural Networks"): each input has core bits
whose parity is the label (the base objective: a feature that fully predicts the label but is
complex), a background bit equal to the label on every training input (the simplest feature), and
noise bits. On the probe inputs the background bit says the opposite of the label: a network that
learned the core feature keeps the label (internal), one that relies on the background follows it
(proxy). There is no situation cue and no objective spec: the world declares only the two classes it
can tell apart (`classes = ("internal", "proxy")`), and its probe cells are held-out inputs of the one
situation there is.

The published result it reproduces (Shah et al. 2020, MLPs on LMS-7 vs linear features): SGD-trained
networks rely on the simplest feature and ignore the complex one, even though both predict the
training labels perfectly. Here: with 2 core bits (XOR) nearly every run is judged `proxy` (it follows
the background on the probe cells); tests/worlds/test_example_worlds.py asserts at least 75% of runs.

    deceptionlab run examples/spurious.toml -o results/spurious
"""

import itertools

import torch
from pydantic import Field

from deceptionlab.worlds import Dataset, Head, Knobs, ProbeCell, World


class SpuriousKnobs(Knobs):
    core_bits: int = Field(2, ge=1, le=6, description="bits whose parity is the label (1: the core feature is as simple as the background)")
    noise_bits: int = Field(3, ge=0, le=6, description="bits that carry nothing")


class Spurious(World):
    name = "spurious"
    Knobs = SpuriousKnobs
    doc = "label = parity of the core bits; a background bit equals it in training, the opposite on probes"
    classes = ("internal", "proxy")  # internal: the core feature (the base objective); proxy: the background

    def __init__(self, knobs=None):
        super().__init__(knobs)
        k, m = self.knobs.core_bits, self.knobs.noise_bits
        self.input_dim = k + 1 + m
        self.channels = {"world_state": slice(0, self.input_dim)}  # no situation cue, no objective spec
        states = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=k + m)))
        core, noise = states[:, :k], states[:, k:]
        label = core.prod(1)  # the parity of the core bits, in {-1, +1}
        train = torch.cat([core, label[:, None], noise], 1)  # the background agrees with the label
        probe = torch.cat([core, -label[:, None], noise], 1)  # ... and says the opposite here
        self.datasets = {"train": Dataset(train, label, "every input, the background bit equal to the label")}
        self.fit_dataset = "train"
        self.heads = {"policy": Head("policy", "train")}
        self.probe_cells = [
            ProbeCell("training/agree", "training", "base", "agree", train, {"internal": label, "proxy": label}, in_training=True),
            ProbeCell("training/conflict", "training", "base", "conflict", probe, {"internal": label, "proxy": -label}),
        ]
        self.references = {"internal": self.core_label, "proxy": self.background}

    def core_label(self, x):
        return x[:, : self.knobs.core_bits].prod(1)

    def background(self, x):
        return x[:, self.knobs.core_bits].clone()
