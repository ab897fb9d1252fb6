"""The v2 memory controller: ``memory.max``, ``memory.high``, ``memory.swap.max``, the memory
statistics and ``memory.events``."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import MemoryStats, working_set
from supervisor.runtime.cgroups.files import StrPath


def apply(path: Path, resources: Resources) -> None:
    if resources.memory_max is not None:
        files.write(path / "memory.max", resources.memory_max)
    if resources.memory_high is not None:
        files.write(path / "memory.high", resources.memory_high)
    swap = path / "memory.swap.max"
    if resources.memory_swap_max is not None:
        if not swap.exists():
            raise ValueError(f"cannot limit swap: {swap} is missing (the kernel accounts no "
                             "swap: boot it with swapaccount=1)")
        files.write(swap, resources.memory_swap_max)
    elif resources.memory_max is not None and swap.exists() and files.read(swap) == "max":
        # No swap allowed besides the limit, or it would not be the limit; a swap limit given
        # before stays when the memory limit changes.
        files.write(swap, 0)


def stats(path: StrPath) -> MemoryStats:
    usage = files.read_int(f"{path}/memory.current")
    stat = files.read_fields(f"{path}/memory.stat", ("inactive_file", "anon", "file"))
    events = files.read_keyed(f"{path}/memory.events")
    return MemoryStats(
        usage_bytes=usage,
        working_set_bytes=working_set(usage, stat.get("inactive_file", 0)),
        rss=stat.get("anon", 0),
        cache=stat.get("file", 0),
        limit_bytes=files.read_max(f"{path}/memory.max"),
        oom_kills=events.get("oom_kill", 0),
        events=events,
    )


def oom_kills(path: StrPath) -> int:
    return files.read_keyed(f"{path}/memory.events").get("oom_kill", 0)
