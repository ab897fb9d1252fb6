"""The v1 memory controller: ``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``, stats.

v1 limits swap as memory plus swap (``memsw``), so ``memory_swap_max`` is written as
``memory_max + memory_swap_max`` and needs a memory limit. It has nothing like v2's
``memory.high``: ``memory.soft_limit_in_bytes`` only steers reclaim once the whole host runs
short and never throttles, so ``memory_high`` is refused rather than quietly weakened.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files, limits
from supervisor.runtime.cgroups.base import MemoryStats, working_set
from supervisor.runtime.cgroups.files import StrPath


def apply(path: Path, resources: Resources) -> None:
    if resources.memory_high is not None:
        raise ValueError("memory_high needs cgroup v2: v1 has no limit that throttles (its "
                         "memory.soft_limit_in_bytes acts only when the whole host runs short "
                         "of memory); use memory_max here")
    if resources.memory_max is None and resources.memory_swap_max is None:
        return
    limit = path / "memory.limit_in_bytes"
    memsw = path / "memory.memsw.limit_in_bytes"  # only with swap accounting
    if not memsw.exists():
        if resources.memory_swap_max is not None:
            raise ValueError(f"cannot limit swap: {memsw} is missing (the kernel accounts no "
                             "swap: boot it with swapaccount=1)")
        if resources.memory_max is not None:
            files.write(limit, resources.memory_max)
        return
    old_memory, old_total = files.read_int(limit), files.read_int(memsw)
    memory = old_memory if resources.memory_max is None else resources.memory_max
    if memory >= limits.UNLIMITED_BYTES:
        raise ValueError("memory_swap_max needs memory_max on cgroup v1, where swap is limited "
                         "together with memory")
    # Swap as given, else as much as before (none while memory+swap was unlimited): the limit
    # would not be the limit if the container could spill into swap unasked.
    swap = resources.memory_swap_max
    if swap is None:
        swap = 0 if old_total >= limits.UNLIMITED_BYTES else old_total - old_memory
    # The kernel refuses memsw below the memory limit: raise memsw first when growing, lower it
    # last when shrinking.
    total = memory + swap
    for file, value in ((memsw, total), (limit, memory)) if total > old_total else (
            (limit, memory), (memsw, total)):
        files.write(file, value)


def stats(path: StrPath) -> MemoryStats:
    # As cAdvisor: the page counter, which includes kernel memory and the pages charged ahead
    # to each CPU's stock; memory.stat counts neither, so usage cannot be derived from it.
    usage = files.read_int(f"{path}/memory.usage_in_bytes")
    stat = files.read_fields(f"{path}/memory.stat",
                             ("total_inactive_file", "total_rss", "total_cache"))
    limit = files.read_int(f"{path}/memory.limit_in_bytes")
    kills = oom_kills(path)
    return MemoryStats(
        usage_bytes=usage,
        working_set_bytes=working_set(usage, stat.get("total_inactive_file", 0)),
        rss=stat.get("total_rss", 0),
        cache=stat.get("total_cache", 0),
        limit_bytes=None if limit >= limits.UNLIMITED_BYTES else limit,
        oom_kills=kills,
        # memory.events' equivalents: hits of the limit, and kills.
        events={"max": files.read_int(f"{path}/memory.failcnt"), "oom_kill": kills},
    )


def oom_kills(path: StrPath) -> int:
    return files.read_keyed(f"{path}/memory.oom_control").get("oom_kill", 0)
