"""sd_notify over $NOTIFY_SOCKET and sd_listen_fds: the few lines of each protocol, no library.

Besides READY/WATCHDOG, ctrd keeps file descriptors in systemd's fd store (``FDSTORE=1`` with
the descriptors as SCM_RIGHTS, ``FileDescriptorStoreMax=`` on ctrd.service): systemd holds them
while ctrd restarts or after it crashed, and passes them to the next ctrd as it passes
socket-activated ones: from fd 3 on, ``LISTEN_FDS`` of them, named in ``LISTEN_FDNAMES``, for the
process ``LISTEN_PID`` (sd_listen_fds(3), sd_pid_notify_with_fds(3)).
"""

from __future__ import annotations

import array
import os
import socket
import struct
from collections.abc import Sequence

LISTEN_FDS_START = 3
_LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def notify(state: str, fds: Sequence[int] = (), pid: int | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1") and ``fds`` to systemd; False when not run by systemd.

    ``pid``: on behalf of that process, as sd_pid_notify(3) does: its credentials go with the
    message (the kernel lets root name another pid), and systemd takes it as that process's, so
    as one of the unit it belongs to."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    ancillary: list[tuple[int, int, bytes]] = (
        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else [])
    if pid is not None:
        ancillary.append((socket.SOL_SOCKET, socket.SCM_CREDENTIALS,
                          struct.pack("iII", pid, os.getuid(), os.getgid())))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.sendmsg([state.encode()], ancillary, 0, address)
    return True


def store_fds(name: str, fds: Sequence[int]) -> bool:
    """Keep ``fds`` in systemd's fd store under ``name``; False when not run by systemd."""
    return notify(f"FDSTORE=1\nFDNAME={name}", fds)


def remove_stored_fd(name: str) -> bool:
    """Close and forget what the fd store holds under ``name``."""
    return notify(f"FDSTOREREMOVE=1\nFDNAME={name}")


def listen_fds() -> list[tuple[str, int]]:
    """(name, fd) of each descriptor systemd passed to this process, close-on-exec from now on.

    As sd_listen_fds(unset_environment=1): none unless ``LISTEN_PID`` is this process; the
    variables are removed so that no child mistakes them for its own. Call it before anything
    forks: until then the descriptors are inheritable.
    """
    pid, count, names = (os.environ.pop(key, "") for key in _LISTEN_VARIABLES)
    if not pid.isdigit() or int(pid) != os.getpid() or not count.isdigit():
        return []
    fds = range(LISTEN_FDS_START, LISTEN_FDS_START + int(count))
    labels = names.split(":") if names else []
    if len(labels) != len(fds):
        labels = ["unknown"] * len(fds)
    for fd in fds:
        os.set_inheritable(fd, False)
    return list(zip(labels, fds, strict=True))


def listen_environment(names: Sequence[str], pid: int = 1) -> dict[str, str]:
    """What a process given ``len(names)`` sockets from fd 3 on reads with sd_listen_fds(3):
    for PID 1 of a container, as podman passes them (none: no variables)."""
    if not names:
        return {}
    return {"LISTEN_PID": str(pid), "LISTEN_FDS": str(len(names)),
            "LISTEN_FDNAMES": ":".join(names)}


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd expects pings within, if it set one for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6
