"""Choosing the cgroup driver for a host.

Where systemd is PID 1 (``/run/systemd/system`` exists) containers are its scopes, so the cgroup
tree has one manager. Otherwise cgroup v2 is used where it holds the controllers; a hybrid host
(v1 controllers plus a controller-less cgroup2 at ``unified``) and a legacy one get the v1 driver.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.model.defaults import CGROUP_DRIVERS
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import CgroupDriver, CgroupUnavailableError
from supervisor.runtime.cgroups.v1.driver import V1Driver
from supervisor.runtime.cgroups.v1.hierarchy import mounted
from supervisor.runtime.cgroups.v2.driver import V2Driver
from supervisor.systemd import units

SYSTEMD_DRIVER = "systemd"


def detect(root: Path = Path("/sys/fs/cgroup")) -> str:
    """The name of the cgroupfs driver that fits the hierarchy mounted at ``root``."""
    controllers = root / "cgroup.controllers"
    if controllers.is_file() and files.read(controllers):
        return V2Driver.name
    if mounted(root):
        return V1Driver.name
    raise CgroupUnavailableError(
        f"no cgroup controllers under {root}: neither cgroup v2 ({controllers}) "
        f"nor cgroup v1 hierarchies ({root}/memory, {root}/cpu, ...)"
    )


def open_driver(
    kind: str = "auto", root: Path = Path("/sys/fs/cgroup"), parent: str = "ctr"
) -> CgroupDriver:
    """The driver ``kind`` for containers in ``parent``; ``auto`` picks systemd where it is
    PID 1, ``cgroupfs`` (and ``auto`` elsewhere) the cgroup version."""
    if kind not in CGROUP_DRIVERS:
        raise ValueError(f"unknown cgroup driver {kind!r}: use one of {', '.join(CGROUP_DRIVERS)}")
    if kind == SYSTEMD_DRIVER or (kind == "auto" and units.booted()):
        from supervisor.runtime.cgroups.systemd import SystemdDriver  # dbus-next: only here

        return SystemdDriver(root)
    if kind in ("auto", "cgroupfs"):
        kind = detect(root)
    if kind == V2Driver.name:
        return V2Driver(root, parent)
    return V1Driver(root, parent)
