"""ctrctl run's HTTP exchange (supervisor.cli.wire): an answer is read as far as its own length
says, not until ctrd closes the connection, which it does a while after answering."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from supervisor.cli import wire


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, ctrd = socket.socketpair()
    ours.settimeout(5)  # a read that waits for the close fails the test instead of hanging it
    with ours, ctrd:
        yield ours, ctrd


def test_an_answer_with_its_length_is_read_without_the_close(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, ctrd = pair
    ctrd.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n'
                 b'\r\n{"exit_code"')
    ctrd.sendall(b": 3}")  # the body in two pieces
    assert wire.answer(ours) == {"exit_code": 3}


def test_no_content_is_whole_at_its_head(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, ctrd = pair
    ctrd.sendall(b"HTTP/1.1 204 No Content\r\nServer: ctrd\r\n\r\n")
    assert wire.answer(ours) is None


def test_an_answer_without_a_length_ends_with_the_connection(
        pair: tuple[socket.socket, socket.socket]) -> None:
    ours, ctrd = pair
    ctrd.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1, \r\n")
    ctrd.sendall(b"2\r\n2]\r\n0\r\n\r\n")
    ctrd.shutdown(socket.SHUT_WR)
    assert wire.answer(ours) == [1, 2]


def test_an_error_keeps_its_words(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, ctrd = pair
    body = b'{"error": "no container x", "detail": null}'
    ctrd.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with pytest.raises(wire.ApiError, match="no container x") as raised:
        wire.answer(ours)
    assert raised.value.status == 404
