"""Who may use the API: whoever can open the Unix socket; over TCP, whoever sends the token.

A refused request gets 401 and nothing else: the same answer for a missing token, a wrong one
and a path that does not exist, so a client without the token learns nothing of the API. Routes
of an interface with a contract of its own (the graders') are added with ``add_open_routes`` and
answer over TCP without the token.
"""

from __future__ import annotations

import hmac
import socket

from aiohttp import web
from aiohttp.typedefs import Handler

from supervisor.api.errors import error_response

TOKEN = web.AppKey("token", str)  # set when the application listens on TCP
OPEN = web.AppKey("open_resources", set[web.AbstractResource])
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ctrd"'}  # RFC 6750, section 3


def add_open_routes(app: web.Application, table: web.RouteTableDef) -> None:
    """Add ``table``'s routes; over TCP they answer without the token."""
    app[OPEN].update(route.resource for route in app.add_routes(table)
                     if route.resource is not None)


def _over_unix_socket(request: web.Request) -> bool:
    transport = request.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    return sock is not None and sock.family == socket.AF_UNIX


def _bearer(request: web.Request) -> bytes | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip().encode() if scheme.lower() == "bearer" else None


def _authorized(request: web.Request) -> bool:
    if _over_unix_socket(request) or request.match_info.route.resource in request.app[OPEN]:
        return True
    token, given = request.app.get(TOKEN), _bearer(request)
    return token is not None and given is not None and hmac.compare_digest(given, token.encode())


@web.middleware
async def bearer_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _authorized(request):
        return error_response(401, "unauthorized", headers=CHALLENGE)
    return await handler(request)
