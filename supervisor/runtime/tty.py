"""A pseudo-terminal for an interactive container, relayed to the caller's own terminal.

The container must not share the caller's terminal: it becomes a session leader with its own
controlling terminal, so job control inside works and the caller's shell is left untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import struct
import termios
import tty
from collections.abc import Iterator


def open_pty() -> tuple[int, str]:
    """A new pty pair: the master fd (ours) and the slave's path (the container's console)."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    os.set_inheritable(master, False)
    return master, path


def copy_window_size(src: int, dst: int) -> None:
    """The terminal size of ``src`` (if it is a terminal) onto ``dst``."""
    with contextlib.suppress(OSError):
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The caller's terminal in raw mode (keys go to the container as typed), restored after."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _drain(master: int, stdout: int) -> bool:
    """Copy what the container wrote; False once its side of the terminal is gone."""
    try:
        data = os.read(master, 65536)
    except OSError:  # EIO: every slave end is closed
        return False
    if data:
        os.write(stdout, data)
    return bool(data)


def relay(master: int, exited: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy stdin -> master and master -> stdout until PID 1 exits.

    ``exited`` is a pidfd of the container's PID 1: it turns readable when the process ends, which
    ends the relay without polling even if a leftover process still holds the terminal open.
    """
    if os.isatty(stdin):
        copy_window_size(stdin, master)
        signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(stdin, master))
    sources = [master, stdin, exited]
    while True:
        try:
            readable, _, _ = select.select(sources, [], [])
        except InterruptedError:
            continue
        if master in readable and not _drain(master, stdout):
            return
        if stdin in readable:
            data = os.read(stdin, 65536)
            if data:
                os.write(master, data)
            else:
                sources.remove(stdin)
        if exited in readable:
            while select.select([master], [], [], 0)[0] and _drain(master, stdout):
                pass
            return
