"""Built-in detectors on N bitworld models (16 cue copies, depth 2, width 64): batched over members (one
ensemble, as `deceptionlab detect` scores a set) against the same detectors run model by model on a sample
of them (the peer: a one-member ensemble each), in the same run.

    PYTHONPATH=src python benchmarks/bench_detect.py [N] [LOOP_SAMPLE] [--finetune]

The issue's target: every non-fine-tuning detector on 1,000 models in under 2 minutes on 2 cores.
`finetune` (full-batch gradient descent, up to 100 steps) is left out unless asked for. The models are
fresh inits (per-run generators): the detectors' cost does not depend on what was learnt, except
finetune's, which stops once every member has changed (an init changes fast: a lower bound). `noise`
pays for the weight-noise draws that `noise_confidence` then reads from the shared cache (Inputs.cache),
in both paths alike.
"""

from __future__ import annotations

import sys
import time

import torch

from deceptionlab.core.rng import generator
from deceptionlab.detect import (
    BUILTIN,
    Inputs,
    builtin,  # noqa: F401
)
from deceptionlab.models import MLPEnsemble
from deceptionlab.worlds import make_world


def main(n: int = 1000, sample: int = 20, finetune: bool = False) -> None:
    world = make_world("bitworld", {"cue_copies": 16, "overseer_model": False})
    model = MLPEnsemble.init(world.input_dim, 2, 64, len(world.heads), [generator(s, "init") for s in range(n)])
    inputs = Inputs.of(world, list(range(n)))
    names = [d for d in BUILTIN if finetune or d != "finetune"]
    alone = [(MLPEnsemble([p[i : i + 1].contiguous() for p in model.params]), Inputs.of(world, [i])) for i in range(sample)]
    total_b, total_l = 0.0, 0.0
    print(f"{'detector':18s} {'batched s':>10s} {'one by one s (est.)':>20s} {'ratio':>7s}")
    for name in names:
        d = BUILTIN[name]
        t = time.perf_counter()
        d(model, inputs)
        batched = time.perf_counter() - t
        t = time.perf_counter()
        for one, inp in alone:
            d(one, inp)
        loop = (time.perf_counter() - t) * n / sample
        total_b, total_l = total_b + batched, total_l + loop
        print(f"{name:18s} {batched:10.2f} {loop:20.2f} {loop / batched:7.1f}")
    print(f"{'all':18s} {total_b:10.2f} {total_l:20.2f} {total_l / total_b:7.1f}   ({n} models, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(*map(int, args[:2]), finetune="--finetune" in sys.argv)
