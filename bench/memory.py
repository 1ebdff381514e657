"""Peak RSS: the function's import and clients alone, and one steady-state rotation in a world.

Both run in fresh subprocesses (``ru_maxrss`` is a high-water mark, so it must not see this
process's earlier work). ``python -m bench.memory`` is the child that rotates: it prints one JSON
line with the peak RSS before and after a steady-state rotation, in KiB.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.coldstart import REPO, lambda_env, run_python

_TIMEOUT_SECONDS = 120
_STATUS = Path("/proc/self/status")
# Linux's ru_maxrss survives exec (a child starts at its parent's peak); VmHWM is per process image.
_PEAK_CODE = """
def peak_kib():
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""
_IMPORT_CODE = (
    _PEAK_CODE + "import sys\nfrom rotation_handler import app\napp.runtime()\n"
    "print(peak_kib(), file=sys.stderr)\n"
)


def peak_rss_kib(status: Path = _STATUS) -> int:
    """Return the peak RSS in KiB: ``VmHWM`` where Linux has it, else ``ru_maxrss``."""
    try:
        text = status.read_text(encoding="ascii")
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child() -> dict[str, int]:
    """Bring up a steady-state world, then rotate once; return the peak before and after."""
    from bench.rotation import steady_world, timed_rotation  # noqa: PLC0415 - child only

    with steady_world(max_delay=0.0) as (world, _bootstrap):
        before = peak_rss_kib()
        timed_rotation(world, delay=0.0)
        after = peak_rss_kib()
    return {"before_kib": before, "after_kib": after}


@dataclass(frozen=True, kw_only=True)
class Memory:
    """Peak RSS figures in MiB."""

    function_only: float
    world_before: float
    world_after: float

    @property
    def rotation_increment(self) -> float:
        """How much one rotation raised the world process's peak."""
        return self.world_after - self.world_before

    @property
    def function_estimate(self) -> float:
        """The function's own peak: its import and clients plus what a rotation adds."""
        return self.function_only + self.rotation_increment


def measure_memory() -> Memory:
    """Run both children and collect their peaks."""
    stderr = run_python(_IMPORT_CODE, env=lambda_env())
    function_kib = int(stderr.strip().splitlines()[-1])
    env = {**lambda_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_SECONDS,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return Memory(
        function_only=function_kib / 1024,
        world_before=figures["before_kib"] / 1024,
        world_after=figures["after_kib"] / 1024,
    )


def configured_memory(template: Path = REPO / "template.yaml") -> int | None:
    """Return the function's ``MemorySize`` in template.yaml (the first one found), in MB."""
    match = re.search(
        r"^\s*MemorySize:\s*(\d+)\s*$", template.read_text(encoding="utf-8"), re.MULTILINE
    )
    return int(match.group(1)) if match else None


if __name__ == "__main__":
    print(json.dumps(child()))
