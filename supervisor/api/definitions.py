"""``/v1/definitions`` and ``/v1/reload``: the stored TOML definitions ctrd runs containers from."""

from __future__ import annotations

from aiohttp import web

from supervisor.api import bodies
from supervisor.api.context import backend

routes = web.RouteTableDef()


@routes.get("/v1/definitions")
async def names(request: web.Request) -> web.Response:
    return web.json_response(backend(request).definition_names())


@routes.get("/v1/definitions/{name}")
async def text(request: web.Request) -> web.Response:
    """The merged definition with the files it came from, as ``systemctl cat`` shows a unit."""
    return web.Response(text=backend(request).definition_text(request.match_info["name"]),
                        content_type="text/plain")


@routes.put("/v1/definitions/{name}")
async def store(request: web.Request) -> web.Response:
    await backend(request).put_definition(request.match_info["name"], await bodies.text(request))
    return web.Response(status=204)


@routes.post("/v1/reload")
async def reload(request: web.Request) -> web.Response:
    return web.json_response({"changed": await backend(request).reload()})
