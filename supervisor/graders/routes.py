"""The course graders' interface: ``/config``, ``/cfginfo``, ``/launch``, ``/list``, ``/destroy``.

Its answers are fixed by the graders: 200 with an empty body or the JSON they expect, and 404 or
409 with an empty body, so these handlers answer those cases themselves rather than through the
JSON errors of ``/v1``. A failure the graders' interface does not define (an instance that does
not start) keeps the usual JSON error, so ``ctrctl launch`` can say why. Every route also answers
with a trailing slash.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from supervisor.api import bodies
from supervisor.api.auth import add_open_routes
from supervisor.daemon.view import Conflict, Invalid
from supervisor.graders import configuration
from supervisor.graders.service import Graders

routes = web.RouteTableDef()
SERVICE = web.AppKey("graders", Graders)


def install(app: web.Application, service: Graders) -> None:
    """Serve the graders' routes from ``app``, answering for ``service``; they keep the graders'
    contract on the TCP listener too, which has no token in it."""
    app[SERVICE] = service
    add_open_routes(app, routes)


def _service(request: web.Request) -> Graders:
    return request.app[SERVICE]

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _route(method: str, path: str) -> Callable[[Handler], Handler]:
    """The handler on ``path`` and ``path/``."""
    def register(handler: Handler) -> Handler:
        routes.route(method, path)(handler)
        routes.route(method, f"{path}/")(handler)
        return handler
    return register


def _empty(status: int = 200) -> web.Response:
    return web.Response(status=status)


@_route("POST", "/config")
async def config(request: web.Request) -> web.Response:
    """Stored as NAME-MAJOR-MINOR; 409 for anything unusable or already stored."""
    try:
        await _service(request).put_config(await bodies.text(request))
    except (Invalid, Conflict):
        return _empty(409)
    return _empty()


@_route("GET", "/cfginfo")
async def cfginfo(request: web.Request) -> web.Response:
    files = sorted(configuration.filename(key) for key in _service(request).config_names())
    return web.json_response({"files": files})


async def _launch_request(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await bodies.text(request))
    except (ValueError, RecursionError):  # Invalid (not UTF-8) included
        return None
    return body if isinstance(body, dict) else None


@_route("POST", "/launch")
async def launch(request: web.Request) -> web.Response:
    """An instance of a stored configuration; answers once it runs, echoing the request."""
    body = await _launch_request(request)
    if body is None:
        return _empty(400)
    try:
        key = configuration.config_key(body)
    except ValueError:
        return _empty(404)  # names no configuration that could exist
    graders = _service(request)
    if key not in graders.config_names():
        return _empty(404)
    view = await graders.launch(key)
    return web.json_response({"instance": view.name, "name": body["name"],
                              "major": body["major"], "minor": body["minor"]})


@_route("GET", "/list")
async def instances(request: web.Request) -> web.Response:
    return web.json_response({"instances": [i.to_dict() for i in _service(request).instances()]})


@_route("DELETE", "/destroy/{instance}")
async def destroy(request: web.Request) -> web.Response:
    """200 once the instance is gone; 404 for a name that is no graders' instance."""
    graders = _service(request)
    name = request.match_info["instance"]
    if name not in {i.instance for i in graders.instances()}:
        return _empty(404)
    await graders.destroy(name)
    return _empty()


@_route("DELETE", "/destroyall")
async def destroy_all(request: web.Request) -> web.Response:
    """Every graders' instance, not the containers of ctrd's own definitions."""
    graders = _service(request)
    await asyncio.gather(*(graders.destroy(i.instance) for i in graders.instances()))
    return _empty()
