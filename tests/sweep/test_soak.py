"""A bounded soak (issue 20): a sweep with worker processes killed again and again at random moments (the
driver or one of its workers, SIGKILL), resumed each time, ends with exactly the runs of an uninterrupted
sweep. Stops by itself: DECEPTIONLAB_SOAK_SECONDS (default 30) of killing, then one run to the end. Prints
kills survived / tried. (Ray: test_soak_ray.py.)"""

from __future__ import annotations

import os
import random
import signal
import time

from deceptionlab.sweep import Store
from tests.conftest import assert_same_runs, cli, start, stored_parts
from tests.sweep.test_faults import alive, worker_pids

SECONDS = float(os.environ.get("DECEPTIONLAB_SOAK_SECONDS", "30"))
WORKERS = 2


def test_random_kills_of_driver_and_workers_lose_and_duplicate_nothing(reference, tmp_path):
    spec, ref = reference
    out = tmp_path / "soak"
    rng = random.Random(int(os.environ.get("DECEPTIONLAB_SOAK_SEED", "0")))
    tried = survived = 0
    unsound = []
    deadline = time.time() + SECONDS
    while time.time() < deadline and stored_parts(out) < 8:
        proc = start("run", spec, "--out", out, "--chunk-size", 2, "--workers", WORKERS, "--no-show")
        time.sleep(rng.uniform(1.0, 6.0))
        victim = "driver" if rng.random() < 0.5 else "worker"
        workers = worker_pids(proc.pid)
        attempted = proc.poll() is None  # else the run ended before its kill: nothing to count
        if attempted:
            tried += 1
            os.kill(workers[0] if victim == "worker" and workers else proc.pid, signal.SIGKILL)
            if victim == "worker" and workers:
                time.sleep(rng.uniform(0.5, 2.0))  # the driver retries the chunk; then the driver goes too
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        for w in workers:  # orphaned workers stop at their next progress report
            for _ in range(300):
                if not alive(w):
                    break
                time.sleep(0.1)
        # after each kill the folder holds only whole, verified chunks (at most one per worker written but not
        # yet listed, when the kill fell between their renames and their manifest lines: `run` trains them again)
        _, problems = Store(out).check(fresh=True) if (out / "experiment.json").exists() else ([], [])
        killed = proc.returncode == -signal.SIGKILL and {p.kind for p in problems} <= {"unlisted"} and len(problems) <= WORKERS
        finished = proc.returncode == 0 and not problems  # the driver retried the killed worker's chunk and ended first
        if attempted and (killed or finished):
            survived += 1
        elif attempted or problems:
            unsound.append((victim, proc.returncode, [p.message for p in problems]))
    res = cli("run", spec, "--out", out, "--chunk-size", 2, "--workers", 1, "--no-show")
    assert res.returncode == 0, res.stderr
    print(f"\nsoak: {survived} of {tried} kills survived (the folder sound after each), {stored_parts(out)} chunks at the end")
    assert survived == tried and not unsound, unsound
    assert_same_runs(out, ref)
