"""The v2 cpu controller: ``cpu.max`` (quota and period), ``cpu.weight`` and ``cpu.stat``."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files, limits
from supervisor.runtime.cgroups.base import CpuStats
from supervisor.runtime.cgroups.files import StrPath


def apply(path: Path, resources: Resources) -> None:
    if resources.cpu_quota is not None:
        quota = limits.cpu_quota_us(resources.cpu_quota)
        files.write(path / "cpu.max", f"{quota} {limits.CPU_PERIOD_US}")
    if resources.cpu_weight is not None:
        files.write(path / "cpu.weight", resources.cpu_weight)


def stats(path: StrPath) -> CpuStats:
    stat = files.read_keyed(f"{path}/cpu.stat")
    quota, _, period = files.read(f"{path}/cpu.max").partition(" ")
    limited = quota != "max"
    return CpuStats(
        usage_seconds=stat["usage_usec"] / 1e6,
        user_seconds=stat["user_usec"] / 1e6,
        system_seconds=stat["system_usec"] / 1e6,
        periods=stat.get("nr_periods", 0),
        throttled_periods=stat.get("nr_throttled", 0),
        quota_us=int(quota) if limited else None,
        period_us=int(period) if limited else None,
    )
