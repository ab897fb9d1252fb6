"""How a limit of :class:`Resources` becomes a kernel value; the same for both cgroup versions."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.units import CpuSet
from supervisor.runtime.cgroups import files

CPU_PERIOD_US = 100_000  # the kernel's default CFS period, as systemd and runc use it
_MIN_QUOTA_US = 1_000  # the kernel refuses a quota below 1 ms
_SHARES_MIN, _SHARES_MAX = 2, 262_144

# v1 reports "no limit" as LONG_MAX rounded down to a page; nothing real comes near 2**62 bytes.
UNLIMITED_BYTES = 1 << 62


def cpu_quota_us(cpus: float) -> int:
    """Microseconds of CPU time per :data:`CPU_PERIOD_US` for a quota given in CPUs."""
    return max(round(cpus * CPU_PERIOD_US), _MIN_QUOTA_US)


def cpu_shares(weight: int) -> int:
    """v1 ``cpu.shares`` for a v2 ``cpu.weight``, converted as systemd does (100 -> 1024)."""
    return min(max(weight * 1024 // 100, _SHARES_MIN), _SHARES_MAX)


def check_cpuset(cpus: CpuSet, allowed_file: Path, target: Path) -> None:
    """Refuse CPUs the parent cgroup does not have, naming the file and the value."""
    try:
        allowed = files.read(allowed_file)
    except FileNotFoundError:
        raise ValueError(
            f"cannot write {str(cpus)!r} to {target}: the cpuset controller is not available "
            f"({allowed_file} is missing)"
        ) from None
    missing = cpus.outside(CpuSet.of(allowed) if allowed else CpuSet(()))
    if missing.ranges:
        raise ValueError(
            f"cannot write {str(cpus)!r} to {target}: CPU {missing} not among the parent's CPUs "
            f"{allowed!r}"
        )
