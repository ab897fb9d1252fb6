"""A terminal made inside the container, from its own devpts (as runc makes one): the process's
stdio and controlling terminal, its master end sent to whoever holds the other end of a unix
socket (an engine's ``--console-socket``, or ctr-runtime relaying it itself).

Made from the container's /dev/ptmx, the terminal is the container's /dev/pts/N, so ``tty``
inside names it; a host pty would show as no terminal of the container's. For PID 1 it is also
bound on /dev/console.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios

from supervisor.runtime import syscalls

_TIOCGPTN = 0x80045430  # linux/asm-generic/ioctls.h: the pty's number
_TIOCSPTLCK = 0x40045431  # (un)lock its slave


def attach(channel: int, size: tuple[int, int] | None, console: bool) -> None:
    """In the process, inside the container's root: a new terminal becomes its stdio and
    controlling terminal (in a session of its own); its master goes over ``channel``."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, bytes(4)))[0]
    path = f"/dev/pts/{number}"
    if size:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    with socket.socket(fileno=channel) as sock:
        socket.send_fds(sock, [path.encode()], [master])
    os.close(master)
    if console:
        if not os.path.exists("/dev/console"):
            open("/dev/console", "w").close()
        syscalls.mount(path, "/dev/console", None, syscalls.MS_BIND)
    os.setsid()
    for target in (0, 1, 2):
        os.dup2(slave, target)
    os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def receive(sock: socket.socket) -> int:
    """The master end ``attach`` sent."""
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise RuntimeError("the container's process sent no terminal")
    return fds[0]
