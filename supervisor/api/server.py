"""The API server: one aiohttp application on ctrd's Unix socket and, optionally, on TCP.

Route modules each hold a ``RouteTableDef``; ``ROUTES`` lists ctrd's own. Another interface (the
graders' ``/config``, ``/launch``...) is plugged in by whoever composes ctrd, as an extension
that adds its routes to the application. Over TCP every request but those of such an interface
needs the listener's token (``supervisor.api.auth``).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import socket
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from supervisor.api import containers, definitions, fds, logs, openapi, requestlog, run, sd
from supervisor.api.auth import OPEN, TOKEN, bearer_token
from supervisor.api.context import BACKEND, CLOSING
from supervisor.api.errors import json_errors
from supervisor.api.tcp import TcpListener
from supervisor.daemon.view import Backend

ROUTES: tuple[web.RouteTableDef, ...] = (containers.routes, run.routes, logs.routes,
                                         definitions.routes, openapi.routes, sd.routes)
Extension = Callable[[web.Application], None]  # adds routes (and what they need) to the app
SOCKET_MODE = 0o660  # root and the socket's group (an admin group may be given access)
SOCKET_GROUP = "ctr"  # the socket's group when it exists, as docker's socket has group docker
SHUTDOWN_TIMEOUT = 5.0  # seconds in-flight requests get when ctrd stops
BACKLOG = 128  # clients that wait while ctrd adopts its containers, before it serves


def make_app(backend: Backend, extensions: Sequence[Extension] = ()) -> web.Application:
    app = web.Application(middlewares=[bearer_token, json_errors])
    app[BACKEND] = backend
    app[OPEN] = set()
    app[CLOSING] = asyncio.Event()

    async def closing(app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(closing)
    for table in ROUTES:
        app.add_routes(table)
    for extend in extensions:
        extend(app)
    app[openapi.DOCUMENT] = openapi.document(app)
    return app


def _remove_stale(path: Path) -> None:
    """Remove a socket file left by a ctrd that is gone; refuse to steal a live one's."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
            return
    raise FileExistsError(f"another server is listening on {path}")


def bind_unix(path: Path) -> socket.socket:
    """A bound Unix socket of mode 0660, of group ``ctr`` if there is one; nobody can connect
    before the caller listens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    sock = fds.PassingSocket(socket.AF_UNIX, socket.SOCK_STREAM)  # for sockets to start with
    try:
        sock.bind(str(path))
        with contextlib.suppress(KeyError):
            os.chown(path, -1, grp.getgrnam(SOCKET_GROUP).gr_gid)
        os.chmod(path, SOCKET_MODE)
    except BaseException:
        sock.close()
        raise
    return sock


def _unlink_on_cleanup(app: web.Application, path: Path) -> None:
    """Remove the socket file at shutdown, unless a newer server has already replaced it."""
    inode = path.stat().st_ino

    async def unlink(_app: web.Application) -> None:
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ino == inode:
                path.unlink()

    app.on_cleanup.append(unlink)


@dataclass(frozen=True)
class Bound:
    """The API's sockets, bound and listening before ctrd adopts or starts anything (so one it
    cannot have ends ctrd with nothing left unsupervised); clients wait in the backlog until
    ``serve`` answers them."""

    path: Path
    unix: socket.socket
    tcp: socket.socket | None = None


def bind(socket_path: Path, tcp: TcpListener | None = None) -> Bound:
    """OSError with a one-line reason naming the socket or the address it cannot have."""
    unix = bind_unix(socket_path)
    unix.listen(BACKLOG)  # from now on a second ctrd sees this one as live
    try:
        return Bound(socket_path, unix, None if tcp is None else _bind_tcp(tcp))
    except BaseException:
        unix.close()
        socket_path.unlink(missing_ok=True)
        raise


def _bind_tcp(tcp: TcpListener) -> socket.socket:
    try:
        family = socket.getaddrinfo(tcp.host, tcp.port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((tcp.host, tcp.port), family=family, backlog=BACKLOG)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)  # without Python's gloss
        raise OSError(f"cannot listen on {tcp.host}:{tcp.port} (api_listen): {why}") from None


async def serve(backend: Backend, bound: Bound, tcp: TcpListener | None = None,
                extensions: Sequence[Extension] = ()) -> web.AppRunner:
    """Serve on ``bound`` (its TCP socket with ``tcp``'s token and TLS); the caller calls
    ``runner.cleanup()`` to stop.

    ``runner.addresses`` lists where it listens (the TCP port chosen for port 0 included).
    """
    app = make_app(backend, extensions)
    if tcp is not None:
        app[TOKEN] = tcp.token
    _unlink_on_cleanup(app, bound.path)
    requestlog.install()
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           access_log_class=requestlog.AccessLog)
    try:
        await runner.setup()
        await web.SockSite(runner, bound.unix).start()
        if bound.tcp is not None:
            await web.SockSite(runner, bound.tcp,
                               ssl_context=None if tcp is None else tcp.tls).start()
    except BaseException:
        for sock in (bound.unix, bound.tcp):
            if sock is not None:
                sock.close()
        await runner.cleanup()
        raise
    return runner
