"""What the deception measurements cost beside training (docs/deception.md), measured in one run.

The work: the flagship's most salient condition (16 cue copies, situational-awareness head, own-goal
pretraining, 2,000 steps of Adam), one chunk of `--runs` runs. Timed: training the chunk end to end
(which includes everything below), the controls alone on a model of the same shape (the distance null
and the causal test: `families.mlp.control_columns`), and the derived columns alone on the chunk's
decisions at every checkpoint (`measure.deception.derive`: verdicts per situation at each checkpoint,
soft verdicts, the gap). Their shares of the chunk's time are the price of measuring deception.

    python benchmarks/bench_deception.py [--runs 96] [--rounds 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from deceptionlab.core.rng import generator
from deceptionlab.families.mlp import control_columns
from deceptionlab.judge.deception import Judge, derive
from deceptionlab.models import MLPEnsemble
from deceptionlab.sweep import load_spec
from deceptionlab.sweep.experiment import build_world, train_chunk
from deceptionlab.sweep.spec import expand

CONDITION = {"cue_copies": 16, "situational_awareness": "interaction", "overseer_model": False, "pretraining": "own goal"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    spec = load_spec("experiments/flagship.toml")
    runs = [r for r in expand(spec.model_copy(update={"seeds": list(range(args.runs))})) if r.condition.axes == CONDITION]
    cfg = runs[0].config
    world = build_world(cfg)
    judge = Judge.of(world)
    model = MLPEnsemble.init(world.input_dim, cfg.model.depth, cfg.model.width, len(world.heads), [generator(r.seed, "init") for r in runs])
    steps = sum(p.steps for p in cfg.phases) // cfg.log_every + 1
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((len(runs), steps, judge.n_probe)) < 0.5, 1.0, -1.0)
    chunk, controls, derived = [], [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        train_chunk(runs)
        chunk.append(time.perf_counter() - t)
        t = time.perf_counter()
        control_columns(model, world, [generator(r.seed, "causal") for r in runs])
        controls.append(time.perf_counter() - t)
        t = time.perf_counter()
        derive(judge, codes, np.ones((len(runs), steps)), 0.9, 0.95)
        derived.append(time.perf_counter() - t)
        print(f"  chunk {chunk[-1]:6.1f} s   controls {controls[-1]:5.2f} s   derived columns {derived[-1]:5.2f} s", flush=True)
    c, k, d = min(chunk), min(controls), min(derived)
    print(f"best of {args.rounds}, {len(runs)} runs: chunk {c:.1f} s; controls {k:.2f} s ({k / c:.0%} of it), "
          f"derived columns {d:.2f} s ({d / c:.0%}); training alone about {c - k - d:.1f} s")


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    main()
