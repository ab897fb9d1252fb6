"""Where an OCI container's cgroup is, as ctr's drivers make and open it again: the parent cgroup
and the name of a bundle's ``cgroupsPath`` (ctr-runtime's own default: ``/ctr-runtime/ID``), or
with ``--systemd-cgroup`` the transient scope its ``slice:prefix:name`` names (made over D-Bus
by ctrd's systemd driver), kept in the state record so every later command reaches the same
cgroup."""

from __future__ import annotations

import contextlib
import os
import posixpath

from supervisor.oci.state import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from supervisor.model.spec import ContainerSpec
    from supervisor.runtime.cgroups import Cgroup, CgroupDriver

ROOT = "/sys/fs/cgroup"
DEFAULT_PARENT = "ctr-runtime"
SCOPE = ".scope"


def placement(spec: ContainerSpec, cid: str, systemd: bool) -> dict[str, Any]:
    """The record's ``cgroup``: the driver, the parent under the hierarchies' root (with
    ``--systemd-cgroup``, the slice), the name (there, the scope's unit without ``.scope``:
    ``slice:prefix:name`` is ``prefix-name.scope``, runc's default ``system.slice:PREFIX:ID``)."""
    if systemd:
        from supervisor.model.cgroups import DEFAULT_SLICE

        scope = spec.cgroup.scope
        slice_name, unit = ((scope.slice, scope.unit) if scope is not None
                            else (DEFAULT_SLICE, f"{DEFAULT_PARENT}-{cid}{SCOPE}"))
        return {"driver": "systemd", "root": ROOT, "parent": slice_name,
                "name": unit.removesuffix(SCOPE)}
    path = spec.cgroup.path or f"/{DEFAULT_PARENT}/{cid}"
    parent, name = posixpath.split(path.strip("/"))
    if not parent:
        raise RuntimeError(f"linux.cgroupsPath {path}: ctr-runtime makes a container's cgroup "
                           "under a parent of its own, e.g. /machine/NAME")
    return {"driver": "cgroupfs", "root": ROOT, "parent": parent, "name": name}


def driver(where: dict[str, Any]) -> CgroupDriver:
    from pathlib import Path

    if where["driver"] == "systemd":
        from supervisor.runtime.cgroups.systemd.driver import SystemdDriver

        return SystemdDriver(Path(where["root"]), where["parent"], unit_of=_unit)

    from supervisor.runtime.cgroups import open_driver

    return open_driver(where["driver"], Path(where["root"]), where["parent"])


def _unit(name: str) -> str:
    return name + SCOPE


def reopen(where: dict[str, Any]) -> Cgroup | None:
    """The container's cgroup; None if it is gone."""
    try:
        return driver(where).open(where["name"])
    except FileNotFoundError:
        return None


def remove_if_empty(where: dict[str, Any]) -> bool:
    """Remove the cgroup's directories, and each one's parent left empty, if no process and no
    child cgroup is in them: what ``delete`` of a stopped container mostly finds, done without
    loading the driver (whose imports would cost each delete about as much as the rest).
    False: one is in use (or this record lists none), for the driver's ``destroy``."""
    if where["driver"] == "systemd":
        return False  # the scope is systemd's to stop (the driver's destroy)
    directories = where.get("directories") or []
    for directory in directories:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    for parent in {os.path.dirname(directory) for directory in directories}:
        with contextlib.suppress(OSError):  # still the parent of others: kept
            os.rmdir(parent)
    return bool(directories)


def freezer_file(cgroup: Cgroup) -> str:
    """The file that says whether ``cgroup`` is frozen, which ``state`` reads to say paused."""
    directories = cgroup.directories()
    for name in ("freezer.state", "cgroup.freeze"):
        for directory in directories:
            if (directory / name).exists():
                return str(directory / name)
    return ""
