"""The cgroupfs v1 driver: a container is ``ROOT/CONTROLLER/PARENT/NAME`` in each hierarchy.

On a hybrid host it is also ``ROOT/unified/PARENT/NAME``: that cgroup2 directory tracks every
process of the container in one place, so it answers populated(), pids() and kill()
(``cgroup.kill``), and holds its pressure stall information.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from supervisor.model.spec import DeviceRule, Resources
from supervisor.runtime.cgroups import files, pids
from supervisor.runtime.cgroups.base import (
    Cgroup,
    CgroupDriver,
    CgroupStats,
    cgroup_name,
    check_parent,
    child_names,
)
from supervisor.runtime.cgroups.v1 import blkio, cpu, cpuset, freezer, memory
from supervisor.runtime.cgroups.v1 import devices as device_list
from supervisor.runtime.cgroups.v1.hierarchy import Hierarchies
from supervisor.runtime.cgroups.v2 import core


class V1Cgroup(Cgroup):
    def __init__(self, name: str, dirs: Hierarchies) -> None:
        super().__init__(name)
        self.dirs = dirs

    def directories(self) -> builtins.list[Path]:
        return self.dirs.directories()

    def procs_paths(self) -> builtins.list[Path]:
        return [directory / "cgroup.procs" for directory in self.directories()]

    def apply(self, resources: Resources) -> None:
        memory.apply(self.dirs.memory, resources)
        cpu.apply(self.dirs.cpu, resources)
        cpuset.apply(self.dirs.cpuset, resources)
        pids.apply(self.dirs.pids, resources)
        blkio.apply(self.dirs.blkio, resources)

    def stats(self) -> CgroupStats:
        dirs = self.dirs
        return CgroupStats.of(
            cpu=cpu.stats(dirs.cpu, dirs.cpuacct),
            memory=memory.stats(dirs.memory),
            pids_current=pids.current(dirs.pids),
            io=blkio.stats(dirs.blkio),
            pressure=core.pressure(dirs.unified) if dirs.unified else None,
        )

    def oom_kills(self) -> int:
        return memory.oom_kills(self.dirs.memory)

    def freeze(self, timeout: float = 5.0) -> None:
        freezer.freeze(self.dirs.freezer, timeout)

    def thaw(self) -> None:
        freezer.thaw(self.dirs.freezer)

    def frozen(self) -> bool:
        return freezer.frozen(self.dirs.freezer)

    def pids(self) -> builtins.list[int]:
        return files.procs(self.dirs.unified or self.dirs.freezer)

    def populated(self) -> bool:
        if self.dirs.unified:
            return core.populated(self.dirs.unified)
        return bool(self.pids())

    def _kill_all(self) -> None:
        if self.dirs.unified and core.kill(self.dirs.unified):
            self.thaw()  # tasks frozen by the v1 freezer die only once thawed
        else:
            self._freeze_and_kill()


class V1Driver(CgroupDriver):
    name = "cgroupfs-v1"

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), parent: str = "ctr") -> None:
        self.root = root
        self.parent = check_parent(parent)
        self.hierarchies = Hierarchies.find(root)

    def create(self, name: str, resources: Resources,
               devices: Sequence[DeviceRule] | None = None) -> Cgroup:
        dirs = self.hierarchies.child(self.parent / cgroup_name(name))
        made: builtins.list[Path] = []
        try:
            for directory in dirs.directories():
                if not files.make_child(directory, partial(self._prepare_parent, directory,
                                                           directory == dirs.cpuset)):
                    raise FileExistsError(f"cgroup {directory} already exists")
                made.append(directory)
            cpuset.inherit(dirs.cpuset)
            cgroup = V1Cgroup(name, dirs)
            cgroup.apply(resources)
            device_list.apply(dirs.devices, devices)
        except BaseException:
            for directory in reversed(dirs.directories()):  # the parents it made too
                if directory in made:
                    files.remove_dir(directory)
                files.remove_if_unused(directory.parent)
            raise
        return cgroup

    def _prepare_parent(self, directory: Path, in_cpuset: bool) -> None:
        """Make each level of the parent cgroup above ``directory``, in its hierarchy; in the
        cpuset one, each level's CPUs and memory nodes must be usable by children, and are
        copied into each by the kernel."""
        for level in reversed(directory.parents[:len(self.parent.parts)]):
            files.make_dir(level)
            if in_cpuset:
                cpuset.inherit(level)
                cpuset.clone_to_children(level)

    def open(self, name: str) -> Cgroup:
        dirs = self.hierarchies.child(self.parent / cgroup_name(name))
        if not any(directory.is_dir() for directory in dirs.directories()):
            raise FileNotFoundError(f"no cgroup {name!r} in {self.parent} under {self.root}")
        return V1Cgroup(name, dirs)

    def list(self) -> builtins.list[str]:
        return child_names(self.hierarchies.child(self.parent).directories())
