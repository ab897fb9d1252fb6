"""The systemd driver: each container is the transient scope ``ctr-NAME.scope`` in ``ctr.slice``.

The scope is made with StartTransientUnit (``Delegate=yes``, limits as unit properties), so
systemd knows the container's cgroup as its own and never moves or trims it. systemd makes a
scope only around a process that exists, while our PID 1 joins its cgroup by itself right after
fork; so a stand-in process (forked, it only waits to be killed) is put in the scope, PID 1 joins
it like any cgroup, and :meth:`SystemdCgroup.joined` lets the stand-in go.

The scope's directories are read and written with the cgroupfs classes (``V2Cgroup`` on a pure
v2 host; ``V1Cgroup`` on a hybrid or legacy one). Where systemd has no say (the v1 freezer and
cpuset hierarchies) the driver makes the same path itself; limits systemd does not take (a
property it does not know, cpusets on v1) are written into the scope's cgroup directly, and
reported once.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dbus_next.signature import Variant

from supervisor.model.cgroups import slice_unit
from supervisor.model.spec import DeviceRule, Resources
from supervisor.runtime import syscalls
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import Cgroup, CgroupDriver, CgroupStats
from supervisor.runtime.cgroups.systemd import properties
from supervisor.runtime.cgroups.v1 import cpuset
from supervisor.runtime.cgroups.v1.driver import V1Cgroup
from supervisor.runtime.cgroups.v1.hierarchy import Hierarchies
from supervisor.runtime.cgroups.v2.driver import V2Cgroup
from supervisor.systemd.bus import BusError, Property, SystemdBus
from supervisor.systemd.units import SLICE, scope_container, scope_unit, slice_path

log = logging.getLogger(__name__)

# Not limits: systemd must not stop the whole container when one of its processes is OOM-killed
# (the supervisor decides), and a scope that ended badly must not linger as "failed".
_SCOPE_SETTINGS: list[Property] = [
    ("Delegate", Variant("b", True)),
    ("OOMPolicy", Variant("s", "continue")),
    ("CollectMode", Variant("s", "inactive-or-failed")),
]


class _StandIn:
    """A process that holds a new scope until the container's PID 1 is in it."""

    def __init__(self) -> None:
        self.pid = os.fork()
        if self.pid == 0:
            try:
                syscalls.close_inherited(())
                syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
                while True:
                    signal.pause()
            finally:
                os._exit(0)

    def close(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0


class SystemdCgroup(Cgroup):
    """A container's scope; reads and kernel operations go to the cgroupfs class of its layout."""

    def __init__(self, name: str, driver: SystemdDriver, inner: Cgroup,
                 stand_in: _StandIn | None = None) -> None:
        super().__init__(name)
        self.unit = driver.unit_of(name)
        self.inner = inner
        self._driver = driver
        self._stand_in = stand_in

    def directories(self) -> builtins.list[Path]:
        return self.inner.directories()

    def procs_paths(self) -> builtins.list[Path]:
        """The scope in every hierarchy it exists in (systemd's devices, blkio and name=systemd
        ones too), so PID 1 is where systemd put the stand-in."""
        return [directory / "cgroup.procs" for directory in self._driver.scope_dirs(self.name)]

    def joined(self, pid: int) -> None:
        if self._stand_in is not None:
            self._stand_in.close()
            self._stand_in = None

    def apply(self, resources: Resources) -> None:
        self._driver.apply(self, resources)

    def stats(self) -> CgroupStats:
        return self.inner.stats()

    def oom_kills(self) -> int:
        return self.inner.oom_kills()

    def write_files(self, written: Sequence[tuple[str, str]]) -> None:
        self.inner.write_files(written)

    def freeze(self, timeout: float = 5.0) -> None:
        self.inner.freeze(timeout)

    def thaw(self) -> None:
        self.inner.thaw()

    def frozen(self) -> bool:
        return self.inner.frozen()

    def pids(self) -> builtins.list[int]:
        return self.inner.pids()

    def populated(self) -> bool:
        return self.inner.populated()

    def _kill_all(self) -> None:
        self.inner.kill(signal.SIGKILL)

    def destroyed_at_once(self) -> bool:
        return False  # systemd's stop job is waited for, over D-Bus

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill everything, stop the scope (systemd removes its directories), then remove the
        directories the driver made itself. Idempotent. ``stop_unit`` returns once systemd has
        pruned the scope's cgroups, so what is left is ours."""
        deadline = time.monotonic() + timeout
        if self._stand_in is not None:
            self._stand_in.close()
            self._stand_in = None
        files.wait_until(self._empty_or_kill, deadline, f"the processes of {self.name} to exit")
        self._driver.bus.stop_unit(self.unit)
        self._driver.bus.reset_failed_unit(self.unit)
        # What is left after systemd removed the scope is what the driver made, the slice's
        # levels included (each removed once no other container uses it).
        levels = len(self._driver.relative(self.name).parts) - 1
        for directory in self.inner.directories():
            if directory.is_dir():
                files.remove_tree(directory, deadline)
                for parent in directory.parents[:levels]:
                    files.remove_if_unused(parent)


class SystemdDriver(CgroupDriver):
    """Container cgroups as systemd scopes, over D-Bus (see the module docstring)."""

    name = "systemd"

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), slice_name: str = SLICE,
                 bus: SystemdBus | None = None,
                 unit_of: Callable[[str], str] = scope_unit) -> None:
        """``unit_of``: the scope's unit for a container's name (ctr's own: ``ctr-NAME.scope``;
        an OCI bundle's ``slice:prefix:name`` names its own)."""
        self.root = root
        self.slice = slice_unit(slice_name)
        self.unit_of = unit_of
        self._bus = bus
        controllers = root / "cgroup.controllers"
        self.v2 = controllers.is_file() and bool(files.read(controllers))
        self.hierarchies = None if self.v2 else Hierarchies.find(root)
        # Limits written into the cgroup by us: systemd has no cpuset on cgroup v1, nor the
        # limits that exist only on v2.
        self.direct: set[str] = set() if self.v2 else {"cpuset_cpus", *properties.V2_ONLY}
        self._dropped: set[str] = set()

    @property
    def bus(self) -> SystemdBus:
        if self._bus is None:
            self._bus = SystemdBus()
        return self._bus

    # -- paths ----------------------------------------------------------------------------------

    def relative(self, name: str) -> Path:
        return slice_path(self.slice) / self.unit_of(name)

    def _inner(self, name: str) -> Cgroup:
        if self.hierarchies is None:
            return V2Cgroup(name, self.root / self.relative(name))
        return V1Cgroup(name, self.hierarchies.child(self.relative(name)))

    def scope_dirs(self, name: str) -> builtins.list[Path]:
        """The scope's directory in every hierarchy mounted under the root where it exists."""
        if self.hierarchies is None:
            return [self.root / self.relative(name)]
        mounts = {entry.resolve() for entry in self.root.iterdir() if entry.is_dir()}
        found = [m / self.relative(name) for m in sorted(mounts)]
        return [d for d in found if (d / "cgroup.procs").exists()]

    def _make_missing_dirs(self, cgroup: SystemdCgroup) -> None:
        """The scope's path in the hierarchies systemd leaves alone (on v1: freezer, cpuset,
        and any controller it does not manage here), every level of it; a v1 cpuset level needs
        its parent's CPUs and memory nodes before anyone can join it."""
        cpuset_root = self.hierarchies.cpuset if self.hierarchies else None
        for directory in cgroup.inner.directories():
            with files.hierarchy_locked(directory):  # a destroy removes unused slice levels
                missing: builtins.list[Path] = []  # from the first level there (nested slices)
                while not directory.is_dir():
                    missing.insert(0, directory)
                    directory = directory.parent
                for level in missing:
                    files.make_dir(level)
                    if cpuset_root is not None and level.is_relative_to(cpuset_root):
                        cpuset.inherit(level)

    # -- the driver interface -------------------------------------------------------------------

    def create(self, name: str, resources: Resources,
               devices: Sequence[DeviceRule] | None = None) -> Cgroup:
        unit = self.unit_of(name)
        self.bus.reset_failed_unit(unit)  # a leftover failed scope of that name
        stand_in = _StandIn()
        try:
            self._start(name, stand_in.pid, resources, properties.device_properties(devices))
        except BaseException:
            stand_in.close()
            raise
        cgroup = SystemdCgroup(name, self, self._inner(name), stand_in)
        try:
            self._make_missing_dirs(cgroup)
            self._apply_direct(cgroup, resources)
        except BaseException:
            cgroup.destroy()
            raise
        return cgroup

    def _start(self, name: str, pid: int, resources: Resources,
               device_policy: builtins.list[Property]) -> None:
        unit = self.unit_of(name)
        while True:
            settings = [(k, v) for k, v in _SCOPE_SETTINGS if k not in self._dropped]
            try:
                self.bus.start_transient_unit(unit, [
                    ("Description", Variant("s", f"ctr container {name}")),
                    ("Slice", Variant("s", self.slice)),
                    ("PIDs", Variant("au", [pid])),
                    *settings,
                    *device_policy,
                    *properties.resource_properties(resources, self.direct),
                ])
                return
            except BusError as exc:
                if exc.name.endswith("UnitExists"):
                    raise FileExistsError(f"systemd unit {unit} already exists") from None
                if not self._learn_unknown(exc):
                    raise

    def _learn_unknown(self, exc: BusError) -> bool:
        """A property this systemd does not know: report it once, and from now on write the
        limit into the cgroup ourselves (or, for a scope setting, go without it)."""
        if not exc.name.endswith(("PropertyReadOnly", "InvalidArgs")):
            return False
        # systemd: "Cannot set property NAME, or unknown property."
        known = [p for p, _ in _SCOPE_SETTINGS] + [p for p, _ in properties.PROPERTIES.values()]
        unknown = next((p for p in known if f"property {p}," in exc.text), None)
        if unknown is None:
            return False
        field = properties.field_of(unknown)
        if field is not None:
            if field in self.direct:
                return False
            self.direct.add(field)
            log.warning("systemd does not take %s; writing %s into the cgroup instead",
                        unknown, field)
        else:
            if unknown in self._dropped:
                return False
            self._dropped.add(unknown)
            log.warning("systemd does not take %s; scopes go without it", unknown)
        return True

    def apply(self, cgroup: SystemdCgroup, resources: Resources) -> None:
        """Live update (``ctrctl update``): SetUnitProperties, and the direct writes."""
        while True:
            props = properties.resource_properties(resources, self.direct)
            try:
                if props:
                    self.bus.set_unit_properties(cgroup.unit, props)
                break
            except BusError as exc:
                if not self._learn_unknown(exc):
                    raise
        self._apply_direct(cgroup, resources)

    def _apply_direct(self, cgroup: SystemdCgroup, resources: Resources) -> None:
        direct = {f: getattr(resources, f) for f in self.direct}
        if any(value is not None for value in direct.values()):
            cgroup.inner.apply(dataclasses.replace(Resources(), **direct))

    def open(self, name: str) -> Cgroup:
        if not any(d.is_dir() for d in self._inner(name).directories()):
            raise FileNotFoundError(f"no scope {self.unit_of(name)} in {self.slice}")
        return SystemdCgroup(name, self, self._inner(name))

    def list(self) -> builtins.list[str]:
        parents = ([self.root / slice_path(self.slice)] if self.hierarchies is None
                   else self.hierarchies.child(slice_path(self.slice)).directories())
        return sorted({
            name
            for parent in parents if parent.is_dir()
            for entry in parent.iterdir()
            if entry.is_dir() and (name := scope_container(entry.name)) is not None
        })
