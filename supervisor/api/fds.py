"""File descriptors sent with a request on the API's Unix socket (SCM_RIGHTS).

``ctrctl start --service`` hands systemd's listening sockets to ctrd this way (socket activation,
``supervisor.daemon.sockets``): the descriptors ride on the first bytes of its HTTP request. The
event loop reads a connection with ``recv``, which would drop them (the kernel closes descriptors
a reader has no room for), so the listening socket is a ``PassingSocket``: every connection it
accepts reads with ``recvmsg`` and keeps what came along, close-on-exec, until the request's
handler takes it (``received``) or the connection closes. Only the Unix socket passes them: a
TCP client has none to send.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
from typing import Any

from aiohttp import web

MAX_FDS = 253  # the kernel's SCM_MAX_FD: no message carries more
_ANCILLARY = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)
_connections: dict[int, _Connection] = {}  # by fd, while open


class _Connection(socket.socket):
    """An accepted connection that keeps the descriptors sent along with its bytes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passed: list[int] = []
        _connections[self.fileno()] = self

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data, ancillary, msg_flags, _ = self.recvmsg(bufsize, _ANCILLARY,
                                                     flags | socket.MSG_CMSG_CLOEXEC)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                self.passed.extend(fds)
        if msg_flags & socket.MSG_CTRUNC:  # more than a message can carry: none is trusted
            self.drop()
        return data

    def drop(self) -> None:
        for fd in self.passed:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.passed.clear()

    def close(self) -> None:
        _connections.pop(self.fileno(), None)
        self.drop()
        super().close()


class PassingSocket(socket.socket):
    """A listening Unix socket whose connections keep the descriptors sent to them."""

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        return _Connection(self.family, self.type, self.proto, fileno=fd), address


def received(request: web.Request) -> list[int]:
    """The descriptors that came with ``request`` (one request per connection, as ctrctl
    sends them), now the caller's to close."""
    transport = request.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    connection = None if sock is None else _connections.get(sock.fileno())
    if connection is None:
        return []
    fds, connection.passed = connection.passed, []
    return fds

