"""``GET /v1/openapi.json``: the API as the server itself describes it (OpenAPI 3.0).

The paths and methods come from the application's route table; what each takes and answers is
declared on its handler with ``@operation`` (its summary is the handler's docstring); bodies take
their schemas from their readers (``supervisor.api.bodies``, the limits of
``model.resources.FIELDS``) and the view from the fields of ``ContainerView``. A ``/v1`` route
without a declaration stops the application from being made, so the document cannot fall behind.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

from aiohttp import web

from supervisor.daemon.view import ContainerView

PREFIX = "/v1"
DOCUMENT = web.AppKey("openapi", dict)
ERROR = {"$ref": "#/components/schemas/Error"}
_PARAMETER = re.compile(r"\{(\w+)\}")
_STATUS = {
    400: "a bad body, parameter or definition: the message says what is wrong",
    401: "over TCP without the listener's token",
    404: "no container or definition of that name",
    409: "not possible in the container's state, or the name is taken",
    503: "ctrd is stopping: ask again once it is back",
}

H = TypeVar("H", bound=Callable[..., Any])
routes = web.RouteTableDef()


@dataclass(frozen=True)
class Content:
    media_type: str
    schema: Mapping[str, Any]


def json_body(schema: Mapping[str, Any]) -> Content:
    return Content("application/json", schema)


TEXT = Content("text/plain", {"type": "string"})
VIEW = json_body({"$ref": "#/components/schemas/ContainerView"})
VIEWS = json_body({"type": "array", "items": VIEW.schema})


@dataclass(frozen=True)
class Param:
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Operation:
    """What one route takes and answers, beyond its path and method."""

    summary: str
    description: str
    status: int = 200
    reply: Content | None = None  # None: no body
    body: Content | None = None
    query: Mapping[str, Param] = field(default_factory=dict)
    path: Mapping[str, Param] = field(default_factory=dict)  # {name} is a container's name
    errors: tuple[int, ...] = ()


OPERATIONS: dict[Callable[..., Any], Operation] = {}


def operation(reply: Content | None, status: int = 200, *, body: Content | None = None,
              query: Mapping[str, Param] | None = None, path: Mapping[str, Param] | None = None,
              errors: tuple[int, ...] = ()) -> Callable[[H], H]:
    """Declare what the decorated handler takes and answers."""
    def register(handler: H) -> H:
        summary, _, description = (inspect.getdoc(handler) or "").partition("\n\n")
        OPERATIONS[handler] = Operation(" ".join(summary.split()), description, status, reply,
                                        body, query or {}, path or {}, errors)
        return handler
    return register


# -- schemas of Python types ----------------------------------------------------------------------

_SCALARS: dict[Any, dict[str, Any]] = {
    str: {"type": "string"}, bool: {"type": "boolean"}, int: {"type": "integer"},
    float: {"type": "number"}, Any: {},
}


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON schema of what ``asdict`` makes of a value of type ``hint``."""
    if hint in _SCALARS:
        return dict(_SCALARS[hint])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        kinds = [arg for arg in args if arg is not type(None)]
        schema = type_schema(kinds[0]) if len(kinds) == 1 else {
            "anyOf": [type_schema(arg) for arg in kinds]}
        return {**schema, "nullable": True} if len(kinds) < len(args) else schema
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple) or hint in (list, tuple):
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object",
                **({"additionalProperties": type_schema(args[1])} if args else {})}
    if dataclasses.is_dataclass(hint):
        return dataclass_schema(hint)
    raise TypeError(f"no JSON schema for {hint!r}")


def dataclass_schema(cls: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    return {"type": "object", "required": names,
            "properties": {name: type_schema(hints[name]) for name in names}}


# -- the document ---------------------------------------------------------------------------------

def _parameters(path: str, op: Operation) -> list[dict[str, Any]]:
    found = [{"name": name, "in": "path", "required": True,
              "description": op.path.get(name, Param("a container's name")).description,
              "schema": dict(op.path.get(name, Param("")).schema)}
             for name in _PARAMETER.findall(path)]
    return found + [{"name": name, "in": "query", "required": False,
                     "description": param.description, "schema": dict(param.schema)}
                    for name, param in op.query.items()]


def _content(content: Content) -> dict[str, Any]:
    return {content.media_type: {"schema": dict(content.schema)}}


def _render(path: str, op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "done"}
    if op.reply is not None:
        success["content"] = _content(op.reply)
    responses: dict[str, Any] = {str(op.status): success}
    for status in sorted({*op.errors, 401}):
        responses[str(status)] = {"description": _STATUS[status],
                                  "content": _content(json_body(ERROR))}
    responses["default"] = {"description": "any other failure, in the same shape",
                            "content": _content(json_body(ERROR))}
    rendered: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if op.description:
        rendered["description"] = op.description
    if parameters := _parameters(path, op):
        rendered["parameters"] = parameters
    if op.body is not None:
        rendered["requestBody"] = {"required": op.body.media_type != "application/json",
                                   "content": _content(op.body)}
    return rendered


def _version() -> str:
    try:
        return metadata.version("ctr-supervisor")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0"


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of every ``/v1`` route of ``app`` (HEAD, aiohttp's twin of every
    GET, left out); raises ``LookupError`` for a route no ``@operation`` describes."""
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            continue
        op = OPERATIONS.get(route.handler)
        if op is None:
            raise LookupError(f"{route.method} {path}: no OpenAPI description "
                              "(declare it with supervisor.api.openapi.operation)")
        paths.setdefault(path, {})[route.method.lower()] = _render(path, op)
    return {
        "openapi": "3.0.3",
        "info": {"title": "ctrd", "version": _version(),
                 "description": "ctr's supervisor: containers, their definitions and logs. "
                 "On the Unix socket every request is served; on the TCP listener only with "
                 "the bearer token."},
        "paths": paths,
        "components": {
            "schemas": {
                "ContainerView": dataclass_schema(ContainerView),
                "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                    "error": {"type": "string", "description": "one line a client can print"},
                    "detail": {"description": "what a program may want beyond the message: "
                               "the bad key, every problem of a definition; or null"}}},
            },
            "securitySchemes": {"token": {
                "type": "http", "scheme": "bearer",
                "description": "the TCP listener's token, from its file (api_token_file)"}},
        },
        "security": [{}, {"token": []}],
    }


@routes.get(PREFIX + "/openapi.json")
@operation(json_body({"type": "object"}))
async def openapi(request: web.Request) -> web.Response:
    """This document."""
    return web.json_response(request.app[DOCUMENT])
