"""The cgroup file system inside a container, at an OCI bundle's mount of type ``cgroup``.

With a cgroup namespace of its own the container gets fresh mounts of each hierarchy, which the
kernel roots at its cgroup; without one, binds of its own cgroup's directories (a fresh mount
would show the host's whole tree), as runc makes them. On a cgroup v1 or hybrid host that is a
tmpfs with one directory per hierarchy, named and linked as on the host (``cpu`` ->
``cpu,cpuacct``), and the controller-less cgroup2 as ``unified``; on a pure v2 host, cgroup2
itself. Runs in PID 1 before pivot_root, where the host's /proc and /sys/fs/cgroup still show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from supervisor.runtime import syscalls

HOST_ROOT = "/sys/fs/cgroup"
_V1_CONTROLLERS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                             "net_cls", "net_prio", "blkio", "perf_event", "hugetlb", "pids",
                             "rdma", "misc"})
_LOCKED = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC


@dataclass(frozen=True)
class _Hierarchy:
    mountpoint: str  # on the host
    version: int
    options: str  # controllers (and name=) of a v1 hierarchy
    root: str  # the cgroup mounted there, as /proc/self/cgroup paths are relative to


def _hierarchies() -> list[_Hierarchy]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, tail = line.partition(" - ")
            fstype, _, options = tail.split()[:3]
            mountpoint = fields.split()[4]
            if fstype in ("cgroup", "cgroup2") and os.path.dirname(mountpoint) in (
                    HOST_ROOT, os.path.dirname(HOST_ROOT)):
                wanted = [o for o in options.split(",")
                          if o in _V1_CONTROLLERS or o.startswith("name=")]
                found.append(_Hierarchy(mountpoint, 2 if fstype == "cgroup2" else 1,
                                        ",".join(wanted), fields.split()[3]))
    return found


def _own_cgroups() -> dict[str, str]:
    """Hierarchy (its controllers, or "" for v2) -> our cgroup's path in it."""
    with open("/proc/self/cgroup") as f:
        return {controllers: path for _, controllers, path in
                (line.rstrip("\n").split(":", 2) for line in f)}


def _rooted(own: dict[str, str]) -> bool:
    """Whether our cgroups are the roots of what we see (a cgroup namespace of our own, made
    at them): then a fresh mount shows just them."""
    return all(path == "/" for path in own.values())


def _mount_one(hierarchy: _Hierarchy, target: str, flags: int, fresh: bool,
               own: dict[str, str]) -> None:
    if fresh:
        fstype = "cgroup2" if hierarchy.version == 2 else "cgroup"
        syscalls.mount(fstype, target, fstype, flags | _LOCKED,
                       hierarchy.options if hierarchy.version == 1 else None)
        return
    wanted = set(hierarchy.options.split(",")) if hierarchy.version == 1 else {""}
    path = next((p for controllers, p in own.items() if set(controllers.split(",")) == wanted),
                "/")
    source = os.path.join(hierarchy.mountpoint, os.path.relpath(path, hierarchy.root))
    syscalls.mount(source, target, None, syscalls.MS_BIND | syscalls.MS_REC)
    syscalls.mount(None, target, None, syscalls.MS_BIND | syscalls.MS_REMOUNT | flags | _LOCKED)


def mount_hierarchies(target: str, flags: int) -> None:
    """Mount the container's cgroups at ``target`` with ``flags`` (MS_RDONLY for a read-only
    mount, the usual case)."""
    own = _own_cgroups()
    fresh = _rooted(own)
    hierarchies = _hierarchies()
    v2_only = [h for h in hierarchies if h.mountpoint == HOST_ROOT and h.version == 2]
    if v2_only:
        _mount_one(v2_only[0], target, flags, fresh, own)
        return
    syscalls.mount("tmpfs", target, "tmpfs", _LOCKED, "mode=755")
    for hierarchy in hierarchies:
        name = os.path.basename(hierarchy.mountpoint)
        os.mkdir(os.path.join(target, name))
        _mount_one(hierarchy, os.path.join(target, name), flags, fresh, own)
    for entry in os.listdir(HOST_ROOT):
        link = os.path.join(HOST_ROOT, entry)
        if os.path.islink(link) and not os.path.lexists(os.path.join(target, entry)):
            os.symlink(os.readlink(link), os.path.join(target, entry))
    if flags & syscalls.MS_RDONLY:
        syscalls.mount(None, target, None, syscalls.MS_REMOUNT | _LOCKED | syscalls.MS_RDONLY,
                       "mode=755")
