"""How long `deceptionlab report` takes on a results folder, measured in one run (issue 19's target: the
flagship's report under 15 s when its measurements are stored).

Three settings, each a fresh process running the command line (`deceptionlab report DIR -o OUT`), in
this order:
- **peer**: every measurement computed and every figure drawn, nothing kept (`DECEPTIONLAB_NO_CACHE=1`:
  the report as it was written before the cache);
- **first**: the first report of a folder: the paths measured and kept in the folder's cache, every
  figure drawn and stamped;
- **again**: the same command again: measurements read from the folder's cache, no figure redrawn.

The prior's random draws (`report_figures/prior_draws_N`) are run first and kept for all three: they are
a spec of their own that every report reads once.

    python benchmarks/bench_report.py [RESULTS]   # default: runs experiments/flagship.toml into a temporary folder first (3 min)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "deceptionlab"]


def timed(results: Path, out: Path, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([*CLI, "report", str(results), "-o", str(out)], check=True, env={**os.environ, **env}, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        results = args.results
        if results is None:
            results = work / "flagship"
            subprocess.run([*CLI, "run", "experiments/flagship.toml", "--out", str(results), "--no-show"], check=True)
        out = work / "report.html"
        figures = work / "report_figures"
        timed(results, out, {})  # the prior's draws, once, kept below
        prior = next(figures.glob("prior_draws_*"))
        keep = work / prior.name
        shutil.move(prior, keep)

        def fresh() -> None:
            shutil.rmtree(results / "cache", ignore_errors=True)
            shutil.rmtree(figures, ignore_errors=True)
            figures.mkdir()
            shutil.copytree(keep, figures / keep.name)

        fresh()
        peer = timed(results, out, {"DECEPTIONLAB_NO_CACHE": "1"})
        fresh()
        first = timed(results, out, {})
        again = timed(results, out, {})
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"report of {results} on {cores} cores")
        print(f"  peer  (nothing kept):                        {peer:6.1f} s")
        print(f"  first (paths measured and kept, all drawn):  {first:6.1f} s   {peer / first:.2f}x the peer's speed")
        print(f"  again (measurements and figures read back):  {again:6.1f} s   {peer / again:.1f}x the peer's speed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
