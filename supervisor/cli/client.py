"""A small synchronous client of ctrd's API, on the standard library alone: over its Unix socket,
or over its TCP listener with the bearer token (and TLS) for ``ctrctl --host tcp://HOST:PORT``.

``ctrctl`` starts for every command, so this path must import nothing heavy (no aiohttp, no
pyroute2): http.client and json cost a few milliseconds.
"""

from __future__ import annotations

import array
import http.client
import json
import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from supervisor.cli.endpoint import Endpoint as Endpoint
from supervisor.cli.endpoint import host as host
from supervisor.cli.wire import ApiError as ApiError
from supervisor.cli.wire import Unreachable as Unreachable
from supervisor.model.errors import Invalid


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: Path) -> None:
        super().__init__("localhost")
        self.socket_path = socket_path
        self.passing: list[int] = []  # descriptors sent along with the request (SCM_RIGHTS)

    def send(self, data: Any) -> None:
        """The first bytes carry ``passing``, as ctrd's API socket reads them
        (supervisor.api.fds)."""
        if self.passing and isinstance(data, bytes):
            if self.sock is None:
                self.connect()
            sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               array.array("i", self.passing))])
            self.passing = []
            data = data[sent:]
        super().send(data)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.socket_path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def open_connection(where: Endpoint) -> http.client.HTTPConnection:
    """A connection to ctrd at ``where``: its Unix socket, or TCP (TLS if a file is given)."""
    if where.tcp is None:
        return UnixConnection(where.socket)
    address, port = where.tcp
    if where.tls_ca is None and where.tls_cert is None:
        return http.client.HTTPConnection(address, port)
    context = ssl.create_default_context(cafile=where.tls_ca)
    try:
        if where.tls_cert is not None:
            context.load_cert_chain(where.tls_cert, where.tls_key)
    except OSError as exc:
        raise Invalid(f"--tls-cert {where.tls_cert}: {exc.strerror or exc}") from None
    return http.client.HTTPSConnection(address, port, context=context)


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

    def __init__(self, where: Endpoint | Path) -> None:
        """``where`` ctrd answers; a bare path is its Unix socket."""
        self.where = where if isinstance(where, Endpoint) else Endpoint(where)

    def _lost(self, exc: Exception) -> Unreachable:
        return Unreachable(f"lost the connection to ctrd at {self.where}: "
                           f"{exc or type(exc).__name__}")

    def _send(self, method: str, path: str, body: bytes | None, content_type: str,
              fds: Sequence[int] = ()) -> http.client.HTTPResponse:
        connection = open_connection(self.where)
        if fds:
            if not isinstance(connection, UnixConnection):
                raise Invalid("descriptors can be handed to ctrd over its Unix socket only")
            connection.passing = list(fds)
        headers = self.where.headers()
        if body is not None:
            headers["Content-Type"] = content_type
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            connection.close()
            raise Unreachable(f"cannot reach ctrd at {self.where}: "
                              f"{exc.strerror or exc}") from None
        except ssl.SSLError as exc:
            connection.close()
            raise Unreachable(f"cannot reach ctrd at {self.where}: TLS: "
                              f"{exc.reason or exc}") from None
        except (http.client.HTTPException, OSError) as exc:
            connection.close()
            raise self._lost(exc) from None
        if response.status == 401:
            connection.close()
            raise ApiError(401, f"ctrd at {self.where} refused the API token of "
                           f"{self.where.token_file}")
        if response.status >= 400:
            error = _error(response)
            connection.close()
            raise error
        return response

    def call(self, method: str, path: str, body: Any = None, fds: Sequence[int] = ()) -> Any:
        """A JSON request (``fds`` sent with it); the decoded JSON answer, or None for an empty
        one."""
        data = None if body is None else json.dumps(body).encode()
        response = self._send(method, path, data, "application/json", fds)
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
