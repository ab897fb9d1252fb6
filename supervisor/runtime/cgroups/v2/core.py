"""Files of the cgroup2 core, present in every cgroup2 directory whatever controllers it has.

Shared with the v1 driver, which keeps a controller-less cgroup2 directory on hybrid hosts to
track and kill every process of a container in one place, and to read its pressure stall
information (``cpu.pressure``, ``memory.pressure``, ``io.pressure``: core files too).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import Pressure
from supervisor.runtime.cgroups.files import StrPath

PROC_PRESSURE = Path("/proc/pressure/cpu")


def enable_controllers(path: Path, controllers: Iterable[str]) -> None:
    """Delegate ``controllers`` to the children of ``path``: those not enabled yet, in one write."""
    enabled = set(files.read(path / "cgroup.subtree_control").split())
    wanted = [c for c in controllers if c not in enabled]
    if wanted:
        files.write(path / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def populated(path: Path) -> bool:
    """Whether a process is left in the cgroup or below it; False once the cgroup is gone."""
    try:
        return files.read_keyed(path / "cgroup.events").get("populated") == 1
    except FileNotFoundError:
        return False


def kill(path: Path) -> bool:
    """SIGKILL everything below ``path`` through ``cgroup.kill`` (Linux >= 5.14), frozen processes
    included; False where the kernel lacks it."""
    if not (path / "cgroup.kill").exists():
        return False
    files.write(path / "cgroup.kill", 1)
    return True


@functools.cache
def host_has_pressure() -> bool:
    """Whether this kernel keeps pressure stall information (``CONFIG_PSI``, not ``psi=0``): the
    per-cgroup files exist either way, and fail to read without it."""
    try:
        files.read_text(PROC_PRESSURE)
    except OSError:
        return False
    return True


def pressure(path: StrPath) -> Pressure | None:
    """The PSI totals of the cgroup2 directory ``path`` (in every cgroup2 directory, with or
    without controllers); None where the kernel keeps none."""
    if not host_has_pressure():
        return None
    try:
        cpu, memory, io = (_totals(files.read_text(f"{path}/{resource}.pressure"))
                           for resource in ("cpu", "memory", "io"))
    except OSError:  # a kernel before 4.20, or the cgroup gone
        return None
    return Pressure(cpu[0], cpu[1], memory[0], memory[1], io[0], io[1])


def _totals(text: str) -> tuple[float, float]:
    """(some, full) seconds from ``some avg10=.. avg60=.. avg300=.. total=USEC`` and the same
    ``full`` line (which cpu.pressure lacks before Linux 5.13)."""
    totals = {line[:4]: int(line.rpartition("=")[2]) / 1e6 for line in text.splitlines()}
    return totals.get("some", 0.0), totals.get("full", 0.0)
