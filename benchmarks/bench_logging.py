"""What trajectory logging costs at the flagship's shape, measured in one run.

The work: the flagship's richest condition (situational-awareness and overseer heads, 500 steps of
own-goal pretraining, Adam, batch 32 per head, 2,000 steps), 256 runs as one chunk, trained without
logging and with the flagship's logging (probe scores, three linear probes, losses and decisions at
every 200th step). The machine is shared, so each setting is timed `--rounds` times, alternating,
and the best of each is compared, in wall-clock time and in the process's CPU time (all its threads:
less sensitive to other processes on the machine than the wall clock). Target (issue 14): logging costs
at most 10% of the compiled kernel's training throughput.

    python benchmarks/bench_logging.py [--runs 256] [--log-every 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from deceptionlab.sweep import load_spec
from deceptionlab.sweep.experiment import train_chunk
from deceptionlab.sweep.spec import expand

CONDITION = {"cue_copies": 1, "situational_awareness": "interaction", "overseer_model": True, "pretraining": "own goal"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=256)
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    spec = load_spec("experiments/flagship.toml")
    runs = [r for r in expand(spec.model_copy(update={"seeds": list(range(args.runs))})) if r.condition.axes == CONDITION]

    def timed(log_every: int) -> tuple[float, float]:
        cfg = runs[0].config.model_copy(update={"log_every": log_every})
        chunk = [dataclasses.replace(r, config=cfg) for r in runs]
        t, c = time.perf_counter(), time.process_time()
        train_chunk(chunk)
        return time.perf_counter() - t, time.process_time() - c

    timed(10**9)  # warm-up: kernels load, the evaluator's tables are built once per process
    plain, logged = [], []
    for _ in range(args.rounds):
        plain.append(timed(10**9))
        logged.append(timed(args.log_every))
        print(f"  no logging {plain[-1][0]:6.1f} s ({plain[-1][1]:6.1f} s CPU)   logging every {args.log_every} steps "
              f"{logged[-1][0]:6.1f} s ({logged[-1][1]:6.1f} s CPU)", flush=True)
    (p, pc), (lg, lc) = (min(x[0] for x in plain), min(x[1] for x in plain)), (min(x[0] for x in logged), min(x[1] for x in logged))
    print(f"best of {args.rounds}: no logging {p:.1f} s ({pc:.1f} s CPU), logging {lg:.1f} s ({lc:.1f} s CPU) -> logging costs "
          f"{1 - p / lg:.0%} of the training throughput (wall clock), {1 - pc / lc:.0%} (CPU time)")


if __name__ == "__main__":
    from deceptionlab.core.process import tune_process

    tune_process()  # as the CLI and the executors' workers do for their own processes
    main()
