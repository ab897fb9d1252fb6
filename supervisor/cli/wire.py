"""One HTTP/1.1 request to ctrd on its Unix socket, on a plain socket: what ``ctrctl run`` sends.

``ctrctl run`` hands its container to ctrd at every start (``supervisor.cli.remote_run``), so
the time it takes before the request is most of what it adds to ctrd's own start: ``http.client``
(``supervisor.cli.client``, for every other verb) would add about a fifth to it with its import
(the email package) alone. The exchange here is as small as ctrd's answers let it be: a request
with a JSON body, the descriptors riding on its first bytes (SCM_RIGHTS, as
``supervisor.api.fds`` reads them), ``Connection: close``, and the answer read as far as its
Content-Length. The socket of a sent request can be watched (``select``) until the answer is there.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_HEAD_END = b"\r\n\r\n"


class Unreachable(ConnectionError):
    """ctrd does not answer on its socket (not running, wrong --socket, no permission)."""


class Absent(Unreachable):
    """No ctrd at all: no socket, or nobody listening on it."""


class ApiError(RuntimeError):
    """ctrd answered with an error; the message is its one-line ``error``."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def send(path: Path, method: str, target: str, body: Any = None,
         fds: Sequence[int] = ()) -> socket.socket:
    """A new connection with the request sent on it (``fds`` with its first bytes)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    data = b"" if body is None else json.dumps(body).encode()
    head = (f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    message = head.encode() + data
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise Absent(f"cannot reach ctrd at {path}: {exc.strerror}") from None
    except OSError as exc:
        sock.close()
        raise Unreachable(f"cannot reach ctrd at {path}: {exc.strerror or exc}") from None
    try:
        sent = socket.send_fds(sock, [message], list(fds)) if fds else 0
        if sent < len(message):  # sendall sends even nothing, to a peer that may have answered
            sock.sendall(message[sent:])
    except OSError as exc:
        sock.close()
        raise Unreachable(f"lost the connection to ctrd at {path}: {exc.strerror}") from None
    return sock


def _whole(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer: its head and as much body as its Content-Length
    says (none for 204). It is then read without waiting for ctrd to close the connection,
    which it does about a millisecond after answering; without one, the answer ends with it."""
    head, found, body = data.partition(_HEAD_END)
    if not found:
        return False
    status_line, *headers = head.split(b"\r\n")
    if status_line.split(b" ")[1:2] == [b"204"]:
        return True
    for line in headers:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value)
    return False


def answer(sock: socket.socket) -> Any:
    """The decoded JSON answer to the request sent on ``sock`` (None if empty), which is closed
    then; ApiError for an error, Unreachable if ctrd went away before answering."""
    data = b""
    try:
        while not _whole(data) and (chunk := sock.recv(65536)):
            data += chunk
    except OSError as exc:
        raise Unreachable(f"lost the connection to ctrd: {exc.strerror}") from None
    finally:
        sock.close()
    head, _, body = data.partition(_HEAD_END)
    status_line, *headers = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise Unreachable("lost the connection to ctrd: it closed without answering")
    if any(line.lower().replace(" ", "") == "transfer-encoding:chunked" for line in headers):
        body = _dechunked(body)
    value = json.loads(body) if body.strip() else None
    status = int(parts[1])
    if status >= 400:
        error = value.get("error") if isinstance(value, dict) else None
        detail = value.get("detail") if isinstance(value, dict) else None
        raise ApiError(status, str(error or f"HTTP {status}"), detail)
    return value


def _dechunked(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return bytes(out)


def call(path: Path, method: str, target: str, body: Any = None,
         fds: Sequence[int] = ()) -> Any:
    """``send`` then ``answer``."""
    return answer(send(path, method, target, body, fds))
