"""The machine a run was measured on."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = _CPUINFO) -> str | None:
    """Return the CPU model name from ``/proc/cpuinfo``, if the file exists and names one."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"model name", "Model", "Hardware"} and value.strip():
            return value.strip()
    return None


def describe() -> dict[str, object]:
    """Return python version, platform, CPU count and model."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
    }
