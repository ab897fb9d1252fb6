"""The cgroupfs v2 driver: a container is the directory ``ROOT/PARENT/NAME``."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from pathlib import Path

from supervisor.model.spec import DeviceRule, Resources
from supervisor.runtime.cgroups import files, pids
from supervisor.runtime.cgroups.base import (
    Cgroup,
    CgroupDriver,
    CgroupStats,
    CgroupUnavailableError,
    cgroup_name,
    check_parent,
    child_names,
)
from supervisor.runtime.cgroups.v2 import core, cpu, cpuset, freezer, io, memory
from supervisor.runtime.cgroups.v2 import devices as device_list

# Stats need these; cpuset and io are enabled where the host has them, and only needed for
# cpuset_cpus and the io_* limits (and IO statistics).
REQUIRED_CONTROLLERS = ("cpu", "memory", "pids")
WANTED_CONTROLLERS = ("cpu", "cpuset", "io", "memory", "pids")


class V2Cgroup(Cgroup):
    """A container's cgroup as one cgroup2 directory (also what a systemd scope is on v2)."""

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name)
        self.path = path

    def directories(self) -> builtins.list[Path]:
        return [self.path]

    def procs_paths(self) -> builtins.list[Path]:
        return [self.path / "cgroup.procs"]

    def apply(self, resources: Resources) -> None:
        memory.apply(self.path, resources)
        cpu.apply(self.path, resources)
        cpuset.apply(self.path, resources)
        pids.apply(self.path, resources)
        io.apply(self.path, resources)


    def write_files(self, written: Sequence[tuple[str, str]]) -> None:
        for name, value in written:
            files.write(self.path / name, value)
    def stats(self) -> CgroupStats:
        path = str(self.path)
        return CgroupStats.of(
            cpu=cpu.stats(path),
            memory=memory.stats(path),
            pids_current=pids.current(path),
            io=io.stats(path),
            pressure=core.pressure(path),
        )

    def oom_kills(self) -> int:
        return memory.oom_kills(self.path)

    def freeze(self, timeout: float = 5.0) -> None:
        freezer.freeze(self.path, timeout)

    def thaw(self) -> None:
        freezer.thaw(self.path)

    def frozen(self) -> bool:
        return freezer.frozen(self.path)

    def pids(self) -> builtins.list[int]:
        return files.procs(self.path)

    def populated(self) -> bool:
        return core.populated(self.path)

    def _kill_all(self) -> None:
        # The v2 freezer lets SIGKILL through, so cgroup.kill needs no thaw.
        if not core.kill(self.path):
            self._freeze_and_kill()


class V2Driver(CgroupDriver):
    name = "cgroupfs-v2"

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), parent: str = "ctr") -> None:
        self.root = root
        self.parent = root / check_parent(parent)
        available = set(files.read(root / "cgroup.controllers").split())
        missing = [c for c in REQUIRED_CONTROLLERS if c not in available]
        if missing:
            raise CgroupUnavailableError(
                f"cgroup v2 at {root} lacks the controllers {', '.join(missing)}"
            )
        self.controllers = [c for c in WANTED_CONTROLLERS if c in available]

    def create(self, name: str, resources: Resources,
               devices: Sequence[DeviceRule] | None = None) -> Cgroup:
        path = self.parent / cgroup_name(name)
        if not files.make_child(path, self._prepare_parent):
            raise FileExistsError(f"cgroup {path} already exists")
        cgroup = V2Cgroup(name, path)
        try:
            cgroup.apply(resources)
            device_list.apply(path, devices)
        except BaseException:
            files.remove_dir(path)
            files.remove_if_unused(path.parent)
            raise
        return cgroup

    def _prepare_parent(self) -> None:
        """Make the parent cgroup and delegate the controllers, from the root down to it."""
        level = self.root
        for part in self.parent.relative_to(self.root).parts:
            core.enable_controllers(level, self.controllers)
            level = level / part
            files.make_dir(level)
        core.enable_controllers(level, self.controllers)

    def open(self, name: str) -> Cgroup:
        path = self.parent / cgroup_name(name)
        if not path.is_dir():
            raise FileNotFoundError(f"no cgroup {name!r} in {self.parent}")
        return V2Cgroup(name, path)

    def list(self) -> builtins.list[str]:
        return child_names([self.parent])
