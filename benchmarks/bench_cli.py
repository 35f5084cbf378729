"""How long the command line takes to answer before it does any work (issue 20), measured in one run
against its peers on the same machine: an empty interpreter (`python -c pass`, the floor) and an
interpreter that only imports torch (what every command paid before the CLI imported its modules lazily).

Timed, each in a fresh process, the median of `--rounds` (wall clock, process start to exit):
`deceptionlab --help`; `deceptionlab run SPEC --device tpu` (refused in one line); `import deceptionlab`;
`python -c pass`; `python -c "import torch"`.

    python benchmarks/bench_cli.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1] / "tests" / "data" / "format3" / "spec.toml"

CASES = {
    "python -c pass": ["-c", "pass"],
    "import deceptionlab": ["-c", "import deceptionlab"],
    "deceptionlab --help": ["-m", "deceptionlab", "--help"],
    "deceptionlab run SPEC --device tpu": ["-m", "deceptionlab", "run", str(SPEC), "--device", "tpu"],
    'python -c "import torch"': ["-c", "import torch"],
}


def _once(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, env={**os.environ}, check=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    times: dict[str, list[float]] = {k: [] for k in CASES}
    for _ in range(args.rounds):  # interleaved: a change in the machine's load touches every case alike
        for name, argv in CASES.items():
            times[name].append(_once(argv))
    med = {k: statistics.median(v) for k, v in times.items()}
    floor, torch = med["python -c pass"], med['python -c "import torch"']
    print(f"median of {args.rounds} rounds, load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':40s} {'seconds':>8s} {'- floor':>8s} {'/ import torch':>15s}")
    for name, s in med.items():
        print(f"{name:40s} {s:8.3f} {s - floor:8.3f} {s / torch:15.2f}")


if __name__ == "__main__":
    main()
