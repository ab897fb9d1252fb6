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
from pathlib import Path

from aiohttp import web

from supervisor.api import containers, definitions, fds, logs, openapi, requestlog, run
from supervisor.api.auth import OPEN, TOKEN, bearer_token
from supervisor.api.context import BACKEND, CLOSING
from supervisor.api.errors import json_errors
from supervisor.api.tcp import TcpListener
from supervisor.daemon.view import Backend

ROUTES: tuple[web.RouteTableDef, ...] = (containers.routes, run.routes, logs.routes,
                                         definitions.routes, openapi.routes)
Extension = Callable[[web.Application], None]  # adds routes (and what they need) to the app
SOCKET_MODE = 0o660  # root and the socket's group (an admin group may be given access)
SOCKET_GROUP = "ctr"  # the socket's group when it exists, as docker's socket has group docker
SHUTDOWN_TIMEOUT = 5.0  # seconds in-flight requests get when ctrd stops


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


async def serve(backend: Backend, socket_path: Path, tcp: TcpListener | None = None,
                extensions: Sequence[Extension] = ()) -> web.AppRunner:
    """Listen on ``socket_path`` (and ``tcp``); the caller calls ``runner.cleanup()`` to stop.

    ``runner.addresses`` lists where it listens (the TCP port chosen for port 0 included).
    """
    app = make_app(backend, extensions)
    if tcp is not None:
        app[TOKEN] = tcp.token
    sock = bind_unix(socket_path)
    _unlink_on_cleanup(app, socket_path)
    requestlog.install()
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT,
                           access_log_class=requestlog.AccessLog)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if tcp is not None:
            await web.TCPSite(runner, tcp.host, tcp.port, ssl_context=tcp.tls).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner
