"""A real two-node Ray cluster on 127.0.0.1 for the tests: a head and a worker node, one CPU each,
token-authenticated, each node a `ray start` in a process group of its own, so that a test can kill the
head or the worker node (SIGKILL to the group) and start them again. Stopped by killing its groups
(`ray stop` would stop every Ray on the machine)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
NODE = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=80000000", "--disable-usage-stats"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRay:
    def __init__(self) -> None:
        self.temp = tempfile.mkdtemp(prefix="dlray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0",
                    "HOME": self.temp}  # no ~/.ray of the user's: the token is the environment's alone
        self.env.pop("RAY_ADDRESS", None)
        self.groups: dict[str, int] = {}

    def start(self, which: tuple[str, ...] = ("head", "node")) -> "LocalRay":
        for role in which:
            args = (["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp}"] if role == "head"
                    else [f"--address={self.address}"])
            ray_start = subprocess.Popen([RAY, "start", *args, *NODE], env=self.env, start_new_session=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.groups[role] = ray_start.pid  # its daemons stay in its new process group
            log, _ = ray_start.communicate(timeout=120)
            assert ray_start.returncode == 0, log
        return self

    def kill(self, role: str) -> None:
        """SIGKILL to every process of the head's or the worker node's `ray start`."""
        group = self.groups.pop(role, None)
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for role in list(self.groups):
            self.kill(role)
        shutil.rmtree(self.temp, ignore_errors=True)


def ray_task_pids() -> list[int]:
    """Ray worker processes running a chunk now (Ray titles a busy worker `ray::<task>`)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::_train_on_ray"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids
