"""``notify = "container"``: the container says when it is ready, over sd_notify(3).

Each such container gets a datagram socket of its own, made by ctrd on the host and bind-mounted
into the container as a directory (``/run/notify``, the socket ``notify.sock`` in it, as podman's
``--sdnotify=container`` and systemd-nspawn do), with ``NOTIFY_SOCKET`` naming it inside. A
directory rather than the socket itself: a restarted ctrd binds a new socket at the same host
path, and the container sees it at once. Only the container reaches it: its host directory
(``STATE_DIR/notify/NAME``) lies in one only root may enter.

ctrd reads what PID 1 (or any process of the container) sends on its event loop: ``READY=1``
makes the run ready, ``STATUS=...`` is passed on to ``ctr@NAME.service`` (``systemctl status``
shows it); other assignments (``WATCHDOG=1``, ``MAINPID=``, fds for a store) are ignored, as a
datagram with descriptors drops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from supervisor.model.spec import MountSpec

log = logging.getLogger(__name__)

INSIDE = "/run/notify"  # where the directory appears in the container
SOCKET_NAME = "notify.sock"
ENVIRONMENT = ("NOTIFY_SOCKET", f"{INSIDE}/{SOCKET_NAME}")
MAX_MESSAGE = 4096  # as systemd reads a notification

Listener = Callable[[dict[str, str]], None]


def directory(state_dir: Path, name: str) -> Path:
    """Where container ``name``'s notify socket is on the host."""
    return state_dir / "notify" / name


def forget(state_dir: Path, name: str) -> None:
    """The container is forgotten: its socket's directory goes too."""
    shutil.rmtree(directory(state_dir, name), ignore_errors=True)


def parse(message: bytes) -> dict[str, str]:
    """``KEY=VALUE`` lines, as sd_notify sends them; lines without ``=`` are ignored."""
    fields = {}
    for line in message.decode(errors="replace").split("\n"):
        key, equals, value = line.partition("=")
        if equals and key:
            fields[key] = value
    return fields


class NotifySocket:
    """One container's notify socket on the host, read on the event loop while it is open."""

    def __init__(self, state_dir: Path, name: str, on_message: Listener) -> None:
        self.directory = directory(state_dir, name)
        self._on_message = on_message
        self._sock: socket.socket | None = None

    @property
    def mount(self) -> MountSpec:
        return MountSpec(target=INSIDE, source=str(self.directory))

    def open(self) -> None:
        """Bind (again: a stale socket of an earlier ctrd is replaced) and start reading."""
        self.close()
        self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory.parent, 0o700)
        self.directory.mkdir(mode=0o755, exist_ok=True)
        path = self.directory / SOCKET_NAME
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                             | socket.SOCK_NONBLOCK)
        try:
            sock.bind(str(path))
            os.chmod(path, 0o666)  # container root may be an unprivileged uid on the host
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                message = self._sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            fields = parse(message)
            if fields:
                self._on_message(fields)

    def close(self) -> None:
        """Stop reading and remove the socket (the directory stays for the next run)."""
        if self._sock is None:
            return
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        with contextlib.suppress(FileNotFoundError):
            (self.directory / SOCKET_NAME).unlink()
