"""The devices and cores a process may train on, checked without importing torch unless CUDA is asked for
(so that the command line answers a wrong `--device` at once: importing torch takes seconds)."""

from __future__ import annotations

import os
import re


def device_problem(device: object) -> str | None:
    """None if this machine has `device` (cpu, cuda, or cuda:N for N below the CUDA device count), else the
    one line that says why not. torch is imported only for a cuda device."""
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d{1,3})?", device):
        return f"--device {device!r}: not a device this lab trains on (cpu, cuda, or cuda:N)"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return f"--device {device}: no CUDA device is available on this machine"
        n = torch.cuda.device_count()
        if ":" in device and int(device.split(":")[1]) >= n:
            return f"--device {device}: this machine has {n} CUDA device{'s' if n > 1 else ''} (cuda:0{f' to cuda:{n - 1}' if n > 1 else ''})"
    return None


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
