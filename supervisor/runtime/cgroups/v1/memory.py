"""The v1 memory controller: ``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, stats."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files, limits
from supervisor.runtime.cgroups.base import MemoryStats, working_set


def apply(path: Path, resources: Resources) -> None:
    if resources.memory_max is None:
        return
    limit = path / "memory.limit_in_bytes"
    memsw = path / "memory.memsw.limit_in_bytes"  # only with swap accounting
    if not memsw.exists():
        files.write(limit, resources.memory_max)
        return
    # memory+swap is set equal to memory, so the container cannot spill into swap. The kernel
    # refuses memsw below the memory limit: raise memsw first when growing, lower it last when
    # shrinking.
    growing = resources.memory_max > files.read_int(limit)
    for file in (memsw, limit) if growing else (limit, memsw):
        files.write(file, resources.memory_max)


def stats(path: Path) -> MemoryStats:
    # As cAdvisor: the page counter, which includes kernel memory and the pages charged ahead
    # to each CPU's stock; memory.stat counts neither, so usage cannot be derived from it.
    usage = files.read_int(f"{path}/memory.usage_in_bytes")
    stat = files.read_keyed(f"{path}/memory.stat")
    limit = files.read_int(f"{path}/memory.limit_in_bytes")
    return MemoryStats(
        usage_bytes=usage,
        working_set_bytes=working_set(usage, stat.get("total_inactive_file", 0)),
        rss=stat.get("total_rss", 0),
        cache=stat.get("total_cache", 0),
        limit_bytes=None if limit >= limits.UNLIMITED_BYTES else limit,
        oom_kills=files.read_keyed(f"{path}/memory.oom_control").get("oom_kill", 0),
    )
