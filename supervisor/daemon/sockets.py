"""Socket activation passed through: the listening sockets systemd holds for a container.

``ctr@NAME.socket`` listens; its first connection starts ``ctr@NAME.service``, whose ExecStart
(``ctrctl start --wait --service NAME``) gets the sockets from systemd (``LISTEN_FDS``) and
hands them to ctrd with the start request (SCM_RIGHTS over the API socket,
``supervisor.api.fds``). ctrd keeps them here for the container and gives them to every PID 1
of it as fds 3.. with ``LISTEN_FDS``, ``LISTEN_PID=1`` and ``LISTEN_FDNAMES``, as podman does
(``supervisor.runtime.container``). Since the sockets stay open and listening in systemd and
here, connections made while the container starts or restarts wait in their backlog instead of
being refused.

They are kept in systemd's fd store too (``NAME/socket/INDEX/FDNAME``), so a restarted ctrd has
them for the next restart of a container it adopted. A stop by request forgets them: systemd
listens on for the next first connection, which starts the service, and so the container, again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Sequence

from supervisor.model.names import is_container_name
from supervisor.systemd import notify

log = logging.getLogger(__name__)

_KIND = "socket"

Named = tuple[str, int]  # (name in LISTEN_FDNAMES, descriptor)


def _label(name: str, index: int, fdname: str) -> str:
    return f"{name}/{_KIND}/{index}/{fdname}"


def split_stored(stored: Iterable[Named]) -> tuple[list[tuple[str, int, Named]], list[Named]]:
    """What systemd's fd store gave back: (container, index, (fdname, fd)) of the sockets, and
    the rest (the log pipes)."""
    sockets, rest = [], []
    for label, fd in stored:
        name, kind, index, fdname = [*label.split("/", 3), "", "", ""][:4]
        if kind == _KIND and index.isdigit() and is_container_name(name):
            sockets.append((name, int(index), (fdname, fd)))
        else:
            rest.append((label, fd))
    return sockets, rest


class Sockets:
    """Each container's sockets, in the order PID 1 gets them."""

    def __init__(self, stored: Iterable[tuple[str, int, Named]] = ()) -> None:
        self._by_name: dict[str, list[Named]] = {}
        for name, _index, socket in sorted(stored, key=lambda item: (item[0], item[1])):
            os.set_inheritable(socket[1], False)
            self._by_name.setdefault(name, []).append(socket)

    def of(self, name: str) -> tuple[Named, ...]:
        return tuple(self._by_name.get(name, ()))

    def same(self, name: str, fds: Sequence[int]) -> bool:
        """Whether ``fds`` are the sockets kept for ``name`` already (the same open sockets)."""
        kept = [os.fstat(fd) for _, fd in self.of(name)]
        given = [os.fstat(fd) for fd in fds]
        return [(s.st_dev, s.st_ino) for s in kept] == [(s.st_dev, s.st_ino) for s in given]

    def give(self, name: str, sockets: Sequence[Named]) -> None:
        """Keep ``sockets`` (ours now: closed when forgotten) for the next starts of ``name``,
        instead of any kept before."""
        self.release(name)
        for index, (fdname, fd) in enumerate(sockets):
            os.set_inheritable(fd, False)
            notify.store_fds(_label(name, index, fdname), [fd])
        if sockets:
            self._by_name[name] = list(sockets)
            log.info("%s: keeping %d socket(s) from systemd: %s", name, len(sockets),
                     ", ".join(fdname for fdname, _ in sockets))

    def release(self, name: str) -> None:
        for index, (fdname, fd) in enumerate(self._by_name.pop(name, ())):
            notify.remove_stored_fd(_label(name, index, fdname))
            with contextlib.suppress(OSError):
                os.close(fd)

    def names(self) -> list[str]:
        return sorted(self._by_name)
