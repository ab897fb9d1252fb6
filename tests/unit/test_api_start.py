"""``POST /v1/containers/NAME/start``: ``wait`` and the listening sockets of socket activation,
sent by ctrctl's own client as SCM_RIGHTS with the request, against test_api.py's backend."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.cli.client import ApiError, Client
from tests.unit.test_api import Api, FakeBackend, served


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock"):
        yield Api(backend, tmp_path / "ctrd.sock")


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[list[socket.socket]]:
    """Two listening sockets, as systemd holds for a ctr@NAME.socket."""
    sockets = []
    for name in ("http", "admin"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp_path / f"{name}.sock"))
        sock.listen()
        sockets.append(sock)
    yield sockets
    for sock in sockets:
        sock.close()


def open_copies(sock: socket.socket) -> int:
    """How many descriptors of this process refer to ``sock``'s socket."""
    target = f"socket:[{os.fstat(sock.fileno()).st_ino}]"
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            continue
    return count


def test_a_plain_start_and_a_start_that_waits(api: Api) -> None:
    assert api.request("POST", "/v1/containers/db/start").json["state"] == "running"
    assert api.request("POST", "/v1/containers/db/start", {"wait": True}).status == 200
    assert api.backend.starts == [("db", False, []), ("db", True, [])]


def test_sockets_come_with_the_request_named_in_order(api: Api,
                                                       listening: list[socket.socket]) -> None:
    Client(api.socket).call("POST", "/v1/containers/db/start",
                            {"wait": True, "sockets": ["http", "admin"]},
                            fds=[sock.fileno() for sock in listening])
    inodes = [os.fstat(sock.fileno()).st_ino for sock in listening]
    assert api.backend.starts == [("db", True, [("http", inodes[0]), ("admin", inodes[1])])]
    assert [open_copies(sock) for sock in listening] == [1, 1]  # the backend closed its own


@pytest.mark.parametrize(("names", "reason"), [
    (["http"], "sockets: 1 name(s) for 2 descriptor(s) sent with the request"),
    (None, "sockets: 0 name(s) for 2 descriptor(s)"),
])
def test_descriptors_that_do_not_match_their_names_are_refused_and_closed(
        api: Api, listening: list[socket.socket], names: list[str] | None, reason: str) -> None:
    body = {"wait": False} if names is None else {"sockets": names}
    with pytest.raises(ApiError, match=re.escape(reason)) as caught:
        Client(api.socket).call("POST", "/v1/containers/db/start", body,
                                fds=[sock.fileno() for sock in listening])
    assert caught.value.status == 400 and caught.value.detail == {"key": "sockets"}
    assert api.backend.starts == []
    assert [open_copies(sock) for sock in listening] == [1, 1]


def test_only_sockets_are_taken(api: Api) -> None:
    read, write = os.pipe()
    try:
        with pytest.raises(ApiError, match="a descriptor sent is not a socket"):
            Client(api.socket).call("POST", "/v1/containers/db/start", {"sockets": ["x"]},
                                    fds=[read])
    finally:
        os.close(read)
        os.close(write)
    assert api.backend.starts == []
