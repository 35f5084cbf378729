"""Building the lab's C kernels (`measure/_prior_kernel.c`, `train/_train_kernel.c`).

Each is compiled with the system C compiler ($CC, else `cc` or `gcc`) on first use and cached in
`$XDG_CACHE_HOME/deceptionlab` (default `~/.cache/deceptionlab`) under a name that hashes the source,
the flags and the CPU's feature flags, so an edited kernel or another machine gets a fresh build.
A kernel is loaded with ctypes by its module, which falls back to its torch path when `compiled`
returns None (no compiler, or every flag set failed).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deceptionlab"


def _cpu_tag() -> str:
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return hashlib.sha256(flags.encode()).hexdigest()[:12]


def compiled(source: Path, name: str, flag_sets: list[list[str]], link: list[str] = ()) -> Path | None:
    """The shared library built from `source` with the first of `flag_sets` that compiles (and `link`
    after the source), from the cache when it is there; None when no compiler or flag set works."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    for flags in flag_sets:
        tag = hashlib.sha256(source.read_bytes() + " ".join([*flags, *link]).encode()).hexdigest()[:12]
        lib = cache_dir() / f"{name}-{tag}-{_cpu_tag()}.so"
        if lib.exists():
            return lib
        try:
            lib.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
                built = Path(tmp) / lib.name
                subprocess.run([cc, *flags, str(source), "-o", str(built), *link], check=True, capture_output=True, timeout=120)
                os.replace(built, lib)  # atomic: concurrent first uses each build, one wins
            return lib
        except (OSError, subprocess.SubprocessError):
            continue
    return None
