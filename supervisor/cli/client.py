"""A small synchronous client of ctrd's API over its Unix socket, on the standard library alone.

``ctrctl`` starts for every command, so this path must import nothing heavy (no aiohttp, no
pyroute2): http.client and json cost a few milliseconds.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Unreachable(ConnectionError):
    """ctrd does not answer on its socket (not running, wrong --socket, no permission)."""


class ApiError(RuntimeError):
    """ctrd answered with an error; the message is its one-line ``error``."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path) -> None:
        super().__init__("localhost")
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket_path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _error(response: http.client.HTTPResponse) -> ApiError:
    raw = response.read()
    try:
        body = json.loads(raw)
        return ApiError(response.status, str(body["error"]), body.get("detail"))
    except (ValueError, KeyError, TypeError):
        text = raw.decode(errors="replace").strip() or response.reason
        return ApiError(response.status, f"HTTP {response.status}: {text}")


class Client:
    """One request per connection: ctrctl makes one or two calls, keep-alive buys nothing."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def _lost(self, exc: Exception) -> Unreachable:
        return Unreachable(f"lost the connection to ctrd at {self.socket_path}: "
                           f"{exc or type(exc).__name__}")

    def _send(self, method: str, path: str, body: bytes | None,
              content_type: str) -> http.client.HTTPResponse:
        connection = UnixConnection(self.socket_path)
        headers = {"Content-Type": content_type} if body is not None else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            connection.close()
            raise Unreachable(f"cannot reach ctrd at {self.socket_path}: "
                              f"{exc.strerror or exc}") from None
        except (http.client.HTTPException, OSError) as exc:
            connection.close()
            raise self._lost(exc) from None
        if response.status >= 400:
            error = _error(response)
            connection.close()
            raise error
        return response

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON request; the decoded JSON answer, or None for an empty one."""
        data = None if body is None else json.dumps(body).encode()
        response = self._send(method, path, data, "application/json")
        raw = response.read()
        response.close()
        if not raw:
            return None
        if response.headers.get_content_type() == "application/json":
            return json.loads(raw)
        return raw.decode(errors="replace")

    def stream(self, path: str) -> Iterator[bytes]:
        """The body as it arrives, for ``logs -f``."""
        response = self._send("GET", path, None, "")
        try:
            while chunk := response.read1(65536):
                yield chunk
        except (http.client.HTTPException, OSError) as exc:
            raise self._lost(exc) from None
        finally:
            response.close()
