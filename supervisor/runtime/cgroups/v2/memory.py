"""The v2 memory controller: ``memory.max``, ``memory.swap.max`` and the memory statistics."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import MemoryStats, working_set


def apply(path: Path, resources: Resources) -> None:
    if resources.memory_max is None:
        return
    files.write(path / "memory.max", resources.memory_max)
    # Without this the container would spill into swap and the limit would not be the limit.
    if (path / "memory.swap.max").exists():
        files.write(path / "memory.swap.max", 0)


def stats(path: Path) -> MemoryStats:
    usage = files.read_int(f"{path}/memory.current")
    stat = files.read_keyed(f"{path}/memory.stat")
    return MemoryStats(
        usage_bytes=usage,
        working_set_bytes=working_set(usage, stat.get("inactive_file", 0)),
        rss=stat.get("anon", 0),
        cache=stat.get("file", 0),
        limit_bytes=files.read_max(f"{path}/memory.max"),
        oom_kills=files.read_keyed(f"{path}/memory.events").get("oom_kill", 0),
    )
