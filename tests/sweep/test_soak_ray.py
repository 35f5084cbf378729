"""The soak of test_soak.py through the Ray executor (issue 20): a sweep on a real two-node Ray cluster
(tests/sweep/ray_local.py) with, at random moments, the driver, a Ray worker training a chunk, the Ray
worker node or the Ray head killed (SIGKILL), the cluster started again where it went, and the sweep
resumed. Every kind of kill is tried at least once (the kinds come in shuffled rounds); killing stops
after DECEPTIONLAB_RAY_SOAK_SECONDS (default 10) once each kind was tried. A folder whose sweep completes
between kills is checked against an uninterrupted local run, run for run, and the soak goes on in a fresh
one; the last is resumed to the end and checked the same way. Prints kills survived / tried."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import ray  # noqa: F401  (the test extra installs it: this file must fail, not skip, without it)

from deceptionlab.sweep import Store
from tests.conftest import assert_same_runs, cli, start, stored_parts
from tests.sweep.ray_local import LocalRay, ray_task_pids

SECONDS = float(os.environ.get("DECEPTIONLAB_RAY_SOAK_SECONDS", "10"))
KINDS = ("driver", "ray worker", "worker node", "head")
HEAD_LINE = "the Ray cluster's head at {} stopped answering; the chunks stored until now are kept"


def _sound(out) -> list[str]:
    """Problems of the folder beyond chunks written but not yet listed (a kill between the rename and the
    manifest line; `run` trains those again)."""
    if not (out / "experiment.json").exists():
        return []
    _, problems = Store(out).check(fresh=True)
    return [p.message for p in problems if p.kind != "unlisted"] + (["more than one unlisted chunk"] if len(problems) > 1 else [])


def test_random_kills_of_driver_ray_workers_node_and_head_lose_and_duplicate_nothing(reference, tmp_path):
    spec, ref = reference
    folders = [tmp_path / "soak-0"]
    rng = random.Random(int(os.environ.get("DECEPTIONLAB_SOAK_SEED", "0")))
    cluster = LocalRay().start()
    tried, survived, unsound, seen = 0, 0, [], set()
    deadline = time.time() + SECONDS
    queue: list[str] = []
    try:
        while (time.time() < deadline or seen != set(KINDS)) and tried < 12:
            out = folders[-1]
            if stored_parts(out) == 8:  # complete: checked at the end; the soak goes on in a fresh folder
                folders.append(tmp_path / f"soak-{len(folders)}")
                continue
            queue = queue or rng.sample(KINDS, len(KINDS))
            victim = queue.pop()
            proc = start("run", spec, "--out", out, "--chunk-size", 2, "--executor", "ray", "--address", cluster.address, "--no-show",
                         env=cluster.env)
            began = stored_parts(out)
            while proc.poll() is None and stored_parts(out) == began and time.time() < deadline + 120:
                time.sleep(0.05)  # the cluster is at work: a first chunk of this run came back
            time.sleep(rng.uniform(0.0, 1.0))
            if proc.poll() is not None:  # the run ended before its kill (the last chunks): nothing to count
                _, err = proc.communicate()
                assert proc.returncode == 0, err
                continue
            tried += 1
            seen.add(victim)
            outcome = _kill(victim, proc, cluster, rng)
            problems = _sound(out)
            if outcome is None and not problems:
                survived += 1
            else:
                unsound.append((victim, outcome, problems))
            if "head" not in cluster.groups:  # the cluster as it was, for the next round
                cluster.kill("node")  # a node outlives its head a minute: both afresh
                cluster.start(("head", "node"))
            elif "node" not in cluster.groups:
                cluster.start(("node",))
        print(f"\nray soak: {survived} of {tried} kills survived ({', '.join(sorted(seen))}), in {len(folders)} folders")
        res = cli("run", spec, "--out", folders[-1], "--chunk-size", 2, "--executor", "ray", "--address", cluster.address, "--no-show",
                  env=cluster.env)
        assert res.returncode == 0, res.stderr
    finally:
        cluster.close()
    assert seen == set(KINDS) and survived == tried and not unsound, (seen, unsound)
    for out in folders:
        assert_same_runs(out, ref)


def _kill(victim: str, proc: subprocess.Popen, cluster: LocalRay, rng: random.Random) -> str | None:
    """Kill `victim` and wait for the driver's end; None when the driver behaved as it must, else what it did."""
    if victim == "driver":
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return None
    if victim == "head":
        cluster.kill("head")
        try:
            _, err = proc.communicate(timeout=60)  # it must notice, by itself, in seconds
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return "the driver still ran 60 s after the head was killed"
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if proc.returncode == 0 or (proc.returncode == 2 and HEAD_LINE.format(cluster.address) in last):
            return None  # it stopped with its line, or its last chunks were back before the head went
        return f"exit {proc.returncode}: {last}"
    if victim == "ray worker":
        pids = ray_task_pids()
        if pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
    else:
        cluster.kill("node")
    time.sleep(rng.uniform(0.5, 3.0))  # Ray retries the chunk elsewhere; then the driver goes too
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    return None if proc.returncode in (0, -signal.SIGKILL) else f"exit {proc.returncode}: {err}"
