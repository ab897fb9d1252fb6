"""A minimal /dev for the container: the usual character devices, a private devpts, /dev/shm.

In a user namespace mknod(2) of a device is refused (that is the point: container root must not
make a node for the host's disk), so the nodes are bind mounts of the host's own, as
systemd-nspawn and rootless runtimes make them.
"""

from __future__ import annotations

import os
import stat

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
LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
    "core": "/proc/kcore",
}


def populate(dev: str, console: str | None = None, bind_nodes: bool = False) -> None:
    """Mount a tmpfs on ``dev`` (the container's future /dev) and fill it.

    ``console`` is the terminal the container's PID 1 talks to, bind-mounted as /dev/console so
    programs that open the console reach the same terminal. ``bind_nodes``: bind the host's
    /dev/NAME (still visible: this runs before pivot_root) instead of making the nodes.
    """
    nosuid = syscalls.MS_NOSUID | syscalls.MS_STRICTATIME
    syscalls.mount("tmpfs", dev, "tmpfs", nosuid, "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        path = f"{dev}/{name}"
        if bind_nodes:
            open(path, "w").close()
            syscalls.mount(f"/dev/{name}", path, None, syscalls.MS_BIND)
        else:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(path, 0o666)  # the umask must not narrow the mode
    for name, target in LINKS.items():
        os.symlink(target, f"{dev}/{name}")
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
    if console:
        open(f"{dev}/console", "w").close()
        syscalls.mount(console, f"{dev}/console", None, syscalls.MS_BIND)
