"""The interface every cgroup driver implements, and the statistics it reports.

ctrd and the metrics collector see only :class:`CgroupDriver`, :class:`Cgroup` and
:class:`CgroupStats`; whether the cgroup lives in one v2 directory, in six v1 hierarchies or in a
systemd scope is the driver's business.
"""

from __future__ import annotations

import builtins
import contextlib
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from supervisor.model.names import is_container_name
from supervisor.model.spec import DeviceRule, Resources
from supervisor.runtime.cgroups import files


class CgroupUnavailableError(RuntimeError):
    """The host has no cgroup hierarchy this driver can use."""


@dataclass(frozen=True)
class CpuStats:
    usage_seconds: float
    user_seconds: float
    system_seconds: float
    periods: int
    throttled_periods: int
    quota_us: int | None  # None: unlimited
    period_us: int | None  # None: unlimited


@dataclass(frozen=True)
class MemoryStats:
    usage_bytes: int
    working_set_bytes: int
    rss: int
    cache: int
    limit_bytes: int | None  # None: unlimited
    oom_kills: int
    # memory.events counters by name (v2: low, high, max, oom, oom_kill, oom_group_kill; v1:
    # max from memory.failcnt, oom_kill)
    events: dict[str, int]


@dataclass(frozen=True)
class DeviceIo:
    """What the container read and wrote on one block device (``MAJ:MIN``) since it started."""

    device: str
    read_bytes: int
    write_bytes: int
    reads: int
    writes: int


@dataclass(frozen=True)
class Pressure:
    """Pressure stall information: seconds some (``waiting``) and all (``stalled``) of the
    container's runnable tasks were delayed for lack of CPU, memory or IO, since it started."""

    cpu_waiting: float
    cpu_stalled: float
    memory_waiting: float
    memory_stalled: float
    io_waiting: float
    io_stalled: float


def working_set(usage: int, inactive_file: int) -> int:
    """Memory the kernel could not reclaim without hurting the container (as cAdvisor counts it)."""
    return max(usage - inactive_file, 0)


@dataclass(frozen=True)
class CgroupStats:
    """One reading of a container's cgroup, in the units the cAdvisor metric names promise.

    Whether the cgroup is frozen is :meth:`Cgroup.frozen`'s to say: no metric needs it, and
    every file left out here is one read fewer per container and scrape.
    """

    cpu_usage_seconds: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    cpu_periods: int
    cpu_throttled_periods: int
    cpu_quota_us: int | None
    cpu_period_us: int | None
    memory_usage_bytes: int
    memory_working_set_bytes: int
    memory_rss: int
    memory_cache: int
    memory_limit_bytes: int | None
    oom_kills: int
    memory_events: dict[str, int]
    pids_current: int
    io: list[DeviceIo]
    pressure: Pressure | None  # None: the kernel keeps none for this cgroup

    @classmethod
    def of(cls, cpu: CpuStats, memory: MemoryStats, pids_current: int, io: list[DeviceIo],
           pressure: Pressure | None) -> CgroupStats:
        return cls(
            cpu_usage_seconds=cpu.usage_seconds,
            cpu_user_seconds=cpu.user_seconds,
            cpu_system_seconds=cpu.system_seconds,
            cpu_periods=cpu.periods,
            cpu_throttled_periods=cpu.throttled_periods,
            cpu_quota_us=cpu.quota_us,
            cpu_period_us=cpu.period_us,
            memory_usage_bytes=memory.usage_bytes,
            memory_working_set_bytes=memory.working_set_bytes,
            memory_rss=memory.rss,
            memory_cache=memory.cache,
            memory_limit_bytes=memory.limit_bytes,
            oom_kills=memory.oom_kills,
            memory_events=memory.events,
            pids_current=pids_current,
            io=io,
            pressure=pressure,
        )


def check_parent(parent: str) -> Path:
    """The parent cgroup, relative to the hierarchy root, made only of plain path components."""
    path = Path(parent)
    if not parent or path.is_absolute() or any(part in (".", "..") for part in path.parts):
        raise ValueError(f"invalid parent cgroup {parent!r}: a relative path such as 'ctr'")
    return path


def cgroup_name(name: str) -> str:
    """A cgroup's own name: one plain path component. ctr's container names are such; an OCI
    bundle's cgroupsPath may end in a longer one (podman's ``libpod-`` and a 64-digit id)."""
    if not name or "/" in name or name in (".", "..") or len(name.encode()) > 255:
        raise ValueError(f"invalid cgroup name {name!r}: one path component")
    return name


def child_names(directories: Iterable[Path]) -> list[str]:
    """Names of the container cgroups in any of ``directories`` (which may be missing)."""
    return sorted({
        entry.name
        for directory in directories if directory.is_dir()
        for entry in directory.iterdir()
        if entry.is_dir() and is_container_name(entry.name)
    })


class Cgroup(ABC):
    """One container's cgroup, however many directories the driver spreads it over."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def directories(self) -> builtins.list[Path]:
        """Every directory this cgroup consists of (removed by :meth:`destroy`)."""

    @abstractmethod
    def procs_paths(self) -> builtins.list[Path]:
        """Every ``cgroup.procs`` file a process writes ``0`` into to join (the container's child
        process does so itself, right after fork, before it runs anything of the container)."""

    def add_process(self, pid: int) -> None:
        for path in self.procs_paths():
            files.write(path, pid)

    def joined(self, pid: int) -> None:
        """The container's PID 1 ``pid`` is in the cgroup now. A driver that could only make the
        cgroup around a stand-in process (systemd: a scope needs a PID) lets it go here."""
        return None  # cgroupfs drivers make the cgroup empty: nothing to let go

    @abstractmethod
    def apply(self, resources: Resources) -> None:
        """Write every limit of ``resources`` that is not None; the others stay as they are."""

    def write_files(self, written: Sequence[tuple[str, str]]) -> None:
        """Interface files written as they are given (an OCI bundle's ``unified``), which only a
        cgroup v2 directory of the container's own has."""
        if written:
            raise CgroupUnavailableError(
                f"cgroup v2 files ({', '.join(name for name, _ in written)}) need a cgroup v2 "
                "host: this one's controllers are cgroup v1's")

    @abstractmethod
    def stats(self) -> CgroupStats: ...

    @abstractmethod
    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer killed here: one file read, where ``stats`` reads
        a dozen (a run's end asks, on the way to its restart)."""

    @abstractmethod
    def freeze(self, timeout: float = 5.0) -> None:
        """Freeze every process and return once the kernel reports them all frozen.

        Raises TimeoutError (and leaves the cgroup thawed) if that takes longer than ``timeout``.
        """

    @abstractmethod
    def thaw(self) -> None: ...

    @abstractmethod
    def frozen(self) -> bool: ...

    @abstractmethod
    def pids(self) -> builtins.list[int]:
        """Every process in the cgroup (thread group ids), sorted."""

    @abstractmethod
    def populated(self) -> bool:
        """Whether any process is left; False once the cgroup is gone."""

    @abstractmethod
    def _kill_all(self) -> None:
        """SIGKILL every process, frozen ones included, so that none escapes by forking."""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process. SIGKILL also kills frozen ones; other signals wait
        until the cgroup is thawed."""
        if sig == signal.SIGKILL:
            self._kill_all()
        else:
            files.signal_all(self.pids(), sig)

    def _freeze_and_kill(self) -> None:
        """SIGKILL each listed process while frozen, so none forks a child we miss; then thaw,
        which is when processes frozen by the v1 freezer actually die."""
        with contextlib.suppress(TimeoutError):  # a task stuck in the kernel: destroy() retries
            self.freeze(timeout=1.0)
        try:
            files.signal_all(self.pids(), signal.SIGKILL)
        finally:
            self.thaw()

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill every process, wait until none is left, remove every directory (and the shared
        parent when this was its last child; ``create`` makes it again).

        Idempotent: a cgroup that is already (partly) gone is finished off without error.
        """
        deadline = time.monotonic() + timeout
        files.wait_until(self._empty_or_kill, deadline, f"the processes of {self.name} to exit")
        for directory in self.directories():
            files.remove_tree(directory, deadline)
            files.remove_if_unused(directory.parent)

    def destroyed_at_once(self) -> bool:
        """Whether ``destroy`` has nothing to wait for: no process left to die (and, for the
        systemd driver, no stop job), so a caller may run it where it must not block long."""
        return not self.populated()

    def _empty_or_kill(self) -> bool:
        if not self.populated():
            return True
        self.kill(signal.SIGKILL)
        return False


class CgroupDriver(ABC):
    """Makes and finds the cgroups of containers under one parent cgroup."""

    name: str  # "cgroupfs-v2" | "cgroupfs-v1"

    @abstractmethod
    def create(self, name: str, resources: Resources,
               devices: Sequence[DeviceRule] | None = None) -> Cgroup:
        """Make the cgroup, apply ``resources`` and allow its processes only the ``devices``
        (None: every device, for a privileged container); on error remove what was made and
        raise. The device policy is set once, before any process joins.

        Raises FileExistsError if a cgroup of that name exists already.
        """

    @abstractmethod
    def open(self, name: str) -> Cgroup:
        """An existing cgroup, for ctrd adopting containers after a restart.

        Raises FileNotFoundError if there is none.
        """

    @abstractmethod
    def list(self) -> builtins.list[str]:
        """The names of the existing container cgroups, sorted."""
