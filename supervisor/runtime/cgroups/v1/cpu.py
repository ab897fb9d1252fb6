"""The v1 cpu and cpuacct controllers: CFS quota and shares, and the CPU time accounted.

cpuacct reports usage in nanoseconds and the user/system split in USER_HZ ticks.
"""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files, limits
from supervisor.runtime.cgroups.base import CpuStats
from supervisor.runtime.cgroups.files import StrPath


def apply(path: Path, resources: Resources) -> None:
    if resources.cpu_quota is not None:
        # Each write of either file makes the kernel check the bandwidth of every cpu cgroup on
        # the host (it walks the whole task-group tree), which grows with the containers
        # running. A new cgroup has the default period already: written only where it differs.
        period = path / "cpu.cfs_period_us"
        if files.read_int(period) != limits.CPU_PERIOD_US:
            files.write(period, limits.CPU_PERIOD_US)
        files.write(path / "cpu.cfs_quota_us", limits.cpu_quota_us(resources.cpu_quota))
    if resources.cpu_weight is not None:
        files.write(path / "cpu.shares", limits.cpu_shares(resources.cpu_weight))


def stats(cpu: StrPath, cpuacct: StrPath) -> CpuStats:
    ticks = os.sysconf("SC_CLK_TCK")
    acct = files.read_keyed(f"{cpuacct}/cpuacct.stat")
    stat = files.read_keyed(f"{cpu}/cpu.stat")
    quota = files.read_int(f"{cpu}/cpu.cfs_quota_us")  # -1: unlimited
    limited = quota >= 0
    return CpuStats(
        usage_seconds=files.read_int(f"{cpuacct}/cpuacct.usage") / 1e9,
        user_seconds=acct["user"] / ticks,
        system_seconds=acct["system"] / ticks,
        periods=stat["nr_periods"],
        throttled_periods=stat["nr_throttled"],
        quota_us=quota if limited else None,
        period_us=files.read_int(f"{cpu}/cpu.cfs_period_us") if limited else None,
    )
