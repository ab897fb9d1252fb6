"""A minimal /dev for the container, and the device allow-list its cgroup enforces.

/dev holds the usual character devices, a private devpts, /dev/shm, and the host devices the
definition gives it (``[[devices]]``, docker's ``--device``). In a user namespace mknod(2) of a
device is refused (that is the point: container root must not make a node for the host's disk),
so the nodes are bind mounts of the host's own, as systemd-nspawn and rootless runtimes make them.

A node in /dev is not what protects the host: container root keeps CAP_MKNOD (as with docker)
and can make any node. The cgroup's allow-list decides what may be opened: the nodes below, the
console, ptmx and the container's own pseudo-terminals, plus the given devices; mknod of any.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from supervisor.model.spec import DeviceRule, DeviceSpec
from supervisor.runtime import syscalls

# name -> (major, minor), as every runtime provides them.
DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
# What every container may open or make, as runc, docker and podman allow it.
DEFAULT_RULES = (
    DeviceRule("c", access="m"),
    DeviceRule("b", access="m"),
    *(DeviceRule("c", major, minor) for major, minor in DEVICES.values()),
    DeviceRule("c", 5, 1),  # /dev/console
    DeviceRule("c", 5, 2),  # /dev/ptmx
    DeviceRule("c", 136),  # /dev/pts/N
)


@dataclass(frozen=True)
class Node:
    """A host device made inside the container's /dev."""

    source: str  # the host's node (bound in a user namespace)
    target: str  # its path inside the container, under /dev
    type: str  # "c" or "b"; an OCI bundle's also "u" (a character device) or "p" (a FIFO)
    major: int
    minor: int
    mode: int  # permission bits, the host node's
    permissions: str
    uid: int = 0
    gid: int = 0

    @property
    def rule(self) -> DeviceRule:
        return DeviceRule("c" if self.type == "c" else "b", self.major, self.minor,
                          self.permissions)


def host_node(device: DeviceSpec) -> Node:
    """The node of ``device`` as it is on the host now."""
    try:
        info = os.stat(device.path)
    except OSError as exc:
        raise ValueError(f"device {device.path}: {exc.strerror}") from None
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise ValueError(f"device {device.path}: not a character or block device")
    return Node(device.path, device.target, "c" if stat.S_ISCHR(info.st_mode) else "b",
                os.major(info.st_rdev), os.minor(info.st_rdev), stat.S_IMODE(info.st_mode),
                device.permissions)


def allow_list(nodes: Iterable[Node], *extra: DeviceRule) -> tuple[DeviceRule, ...]:
    """The default rules, the given devices' and ``extra`` ones (a loop device of the image)."""
    return (*DEFAULT_RULES, *(node.rule for node in nodes), *extra)


LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}


def populate(dev: str, console: str | None = None, bind_nodes: bool = False,
             nodes: Iterable[Node] = ()) -> None:
    """Mount a tmpfs on ``dev`` (the container's future /dev) and fill it.

    ``console`` is the terminal the container's PID 1 talks to, bind-mounted as /dev/console so
    programs that open the console reach the same terminal. ``bind_nodes``: bind the host's
    /dev/NAME (still visible: this runs before pivot_root) instead of making the nodes.
    ``nodes``: the host devices given to the container.
    """
    nosuid = syscalls.MS_NOSUID | syscalls.MS_STRICTATIME
    syscalls.mount("tmpfs", dev, "tmpfs", nosuid, "mode=755,size=65536k")
    os.mkdir(f"{dev}/pts", 0o755)
    syscalls.mount("devpts", f"{dev}/pts", "devpts", syscalls.MS_NOSUID | syscalls.MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.mkdir(f"{dev}/shm", 0o1777)
    syscalls.mount("shm", f"{dev}/shm", "tmpfs",
                   syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC,
                   "mode=1777,size=65536k")
    os.mkdir(f"{dev}/mqueue", 0o755)
    syscalls.mount("mqueue", f"{dev}/mqueue", "mqueue",
                   syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
    make_nodes(dev, console, bind_nodes, nodes)


_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_nodes(dev: str, console: str | None = None, bind_nodes: bool = False,
               nodes: Iterable[Node] = ()) -> None:
    """The default nodes, their links, the console and ``nodes`` in ``dev``: ctr's own tmpfs
    (``populate``) or the /dev an OCI bundle mounts, in which an image's entry of the same name
    is replaced."""
    for name, (major, minor) in DEVICES.items():
        path = _fresh(f"{dev}/{name}")
        if bind_nodes:
            open(path, "w").close()
            syscalls.mount(f"/dev/{name}", path, None, syscalls.MS_BIND)
        else:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(path, 0o666)  # the umask must not narrow the mode
    for name, target in LINKS.items():
        os.symlink(target, _fresh(f"{dev}/{name}"))
    if console:
        open(_fresh(f"{dev}/console"), "w").close()
        syscalls.mount(console, f"{dev}/console", None, syscalls.MS_BIND)
    for node in nodes:
        path = _fresh(f"{dev}/{node.target.removeprefix('/dev/')}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if bind_nodes:
            open(path, "w").close()
            syscalls.mount(node.source, path, None, syscalls.MS_BIND)
        else:
            os.mknod(path, node.mode | _KINDS[node.type], os.makedev(node.major, node.minor))
            os.chmod(path, node.mode)
            if node.uid or node.gid:
                os.chown(path, node.uid, node.gid)


def _fresh(path: str) -> str:
    """``path``, with whatever the image had there (not a directory) removed."""
    if os.path.lexists(path) and not os.path.isdir(path):
        os.unlink(path)
    return path
