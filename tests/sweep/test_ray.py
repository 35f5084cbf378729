"""The Ray executor on a real Ray cluster started here: a head and a worker node on 127.0.0.1, one CPU
each. A sweep through it stores the same runs as the local executor; a Ray worker killed mid-chunk
costs a retry, not a run; a node running other code is refused with one line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import ray  # noqa: F401  (the test extra installs it: this file must fail, not skip, without it)

from tests.conftest import N_RUNS, assert_same_runs, cli, start, stored_parts, tiny_spec_text, wait_for
from tests.sweep.ray_local import LocalRay, ray_task_pids


@pytest.fixture(scope="module")
def cluster():
    """(address, environment) of a two-node Ray cluster (tests/sweep/ray_local.py), torn down afterwards."""
    ray_cluster = LocalRay()
    try:
        ray_cluster.start()
        yield ray_cluster.address, ray_cluster.env
    finally:
        ray_cluster.close()


def test_a_sweep_on_a_ray_cluster_stores_what_the_local_executor_stores(cluster, reference, tmp_path):
    address, env = cluster
    spec, ref = reference
    out = tmp_path / "on-ray"
    res = cli("run", spec, "--out", out, "--chunk-size", 2, "--executor", "ray", "--address", address, "--no-show", env=env)
    assert res.returncode == 0, res.stderr
    assert f"{N_RUNS} runs trained, 0 already stored" in res.stderr
    assert_same_runs(out, ref)


def test_a_ray_worker_killed_mid_chunk_is_retried_and_ray_address_is_read(cluster, reference, tmp_path):
    address, env = cluster
    spec, ref = reference
    out = tmp_path / "killed-on-ray"
    proc = start("run", spec, "--out", out, "--chunk-size", 2, "--executor", "ray", "--no-show", env={**env, "RAY_ADDRESS": address})
    victim = wait_for(ray_task_pids, what="a Ray worker training a chunk")[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"{N_RUNS} runs trained" in err and stored_parts(out) == N_RUNS // 2
    assert_same_runs(out, ref)


OTHER_CODE = """
import sys
from deceptionlab.sweep.executors import ray_cluster
ray_cluster.code_fingerprint = lambda: "0" * 12  # this driver runs "other code" than the nodes
from deceptionlab.cli import main
sys.argv[0] = "deceptionlab"
main()
"""


def test_a_node_running_other_code_is_refused(cluster, tmp_path):
    address, env = cluster
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(seeds=1))
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-c", OTHER_CODE, "run", str(spec), "--out", str(out), "--executor", "ray", "--address", address],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert re.fullmatch(r"error: node \S+ runs other deceptionlab code \(.+, \w{12}\), not this driver's \(0{12}\): "
                        r"install the same deceptionlab on every node \(docs/cluster.md\)", res.stderr.strip())
    assert stored_parts(out) == 0


def test_a_measurement_kind_runs_on_ray_as_locally(cluster, tmp_path):
    """An imitation spec (sweep.measurements) through the Ray executor: the same rows as in this process."""
    import pandas as pd

    import deceptionlab as dl
    from deceptionlab.measure import ImitationConfig, imitation_spec
    from deceptionlab.sweep import Progress, parse_spec, run_experiment
    from deceptionlab.sweep.kinds import to_toml

    address, env = cluster
    raw = imitation_spec("bitworld", ImitationConfig(depths=(1,), widths=(1, 4), seeds=2, steps=50), knobs={}, name="imitation_on_ray")
    spec = tmp_path / "imitation.toml"
    spec.write_text(to_toml(raw))
    res = cli("run", spec, "--out", tmp_path / "ray", "--executor", "ray", "--address", address, "--no-show", env=env)
    assert res.returncode == 0, res.stderr
    assert "16 runs trained, 0 already stored" in res.stderr
    run_experiment(parse_spec(raw), tmp_path / "local", workers=1, progress=Progress(message=lambda m: None))
    cols = ["run_id", "class", "width", "seed", "verdict", "train_accuracy", "score_deceptive"]
    on_ray, local = (dl.load(tmp_path / d)[cols].sort_values("run_id").reset_index(drop=True) for d in ("ray", "local"))
    pd.testing.assert_frame_equal(on_ray, local)
