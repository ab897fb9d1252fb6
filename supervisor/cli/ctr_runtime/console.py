"""Where a process's terminal goes: the engine's ``--console-socket`` (the master end is sent
there, as runc sends it), or a socket pair whose other end ctr-runtime keeps when ``run`` or
``exec`` in the foreground relay the terminal themselves. The terminal itself is made inside the
container (supervisor.runtime.console)."""

from __future__ import annotations

import contextlib
import socket


def channel(path: str | None, stack: contextlib.ExitStack
            ) -> tuple[socket.socket, socket.socket | None]:
    """(the end the process sends over, ours to receive on: None when the engine's)."""
    if path:
        sock = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        sock.connect(path)
        return sock, None
    theirs, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stack.enter_context(theirs)
    stack.enter_context(ours)
    return theirs, ours
