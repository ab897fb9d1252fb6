"""``/v1/definitions`` and ``/v1/reload``: the stored TOML definitions ctrd runs containers from."""

from __future__ import annotations

from aiohttp import web

from supervisor.api import bodies
from supervisor.api.context import backend
from supervisor.api.openapi import TEXT, json_body, operation

routes = web.RouteTableDef()


@routes.get("/v1/definitions")
@operation(json_body({"type": "array", "items": {"type": "string"}}))
async def names(request: web.Request) -> web.Response:
    """The names of the stored definitions."""
    return web.json_response(backend(request).definition_names())


@routes.get("/v1/definitions/{name}")
@operation(TEXT, errors=(404,))
async def text(request: web.Request) -> web.Response:
    """The merged definition with the files it came from, as ``systemctl cat`` shows a unit."""
    return web.Response(text=backend(request).definition_text(request.match_info["name"]),
                        content_type="text/plain")


@routes.put("/v1/definitions/{name}")
@operation(None, 204, body=TEXT, errors=(400,))
async def store(request: web.Request) -> web.Response:
    """Store a definition (TOML) in the first directory of definitions, once it validates."""
    await backend(request).put_definition(request.match_info["name"], await bodies.text(request))
    return web.Response(status=204)


@routes.post("/v1/reload")
@operation(json_body({"type": "object", "required": ["changed"], "properties": {
    "changed": {"type": "array", "items": {"type": "string"}}}}))
async def reload(request: web.Request) -> web.Response:
    """Re-read the definitions; answers with the names of those that changed."""
    return web.json_response({"changed": await backend(request).reload()})
