"""The standard streams of a process started in a container: ours, /dev/null, or a new terminal.

Shared by ``ctrctl run`` and ``ctrctl exec``: with a terminal the process gets the slave end of a
new pty (its own controlling terminal, so job control inside works and the caller's terminal is
untouched) and ctrctl relays between the pty and its own terminal until the process exits.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

from supervisor.runtime import tty


class Stdio(NamedTuple):  # not a dataclass: ``ctrctl run`` imports no dataclasses to reach ctrd
    fds: tuple[int, int, int] | None  # for the process's 0, 1, 2; None: inherit ours
    console: str | None = None  # path of the pty slave, when it has a terminal
    master: int | None = None  # our end of that pty


def open_stdio(stack: contextlib.ExitStack, *, terminal: bool, interactive: bool) -> Stdio:
    """A new terminal, our stdin attached, or stdin from /dev/null (as ``docker run`` does)."""
    if terminal:
        master, console = tty.open_pty()
        stack.callback(os.close, master)
        tty.copy_window_size(0, master)  # before the command runs: it may ask for it at once
        slave = os.open(console, os.O_RDWR | os.O_NOCTTY)
        stack.callback(os.close, slave)
        return Stdio((slave, slave, slave), console, master)
    if interactive:
        return Stdio(None)
    null = os.open(os.devnull, os.O_RDONLY)
    stack.callback(os.close, null)
    return Stdio((null, 1, 2))


def relay_until_exit(master: int, pid: int) -> None:
    """Our terminal <-> the pty, in raw mode, until process ``pid`` exits (it need not be ours)."""
    exited = os.pidfd_open(pid)
    try:
        with tty.raw_terminal(0):
            tty.relay(master, exited)
    finally:
        os.close(exited)
