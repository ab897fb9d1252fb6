"""Request bodies and query parameters turned into typed values, or ``Invalid`` naming the key.

Each reader comes with its JSON schema, which the OpenAPI document (``supervisor.api.openapi``)
shows, so what a route takes is written once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from supervisor.daemon.view import Invalid
from supervisor.model import resources as limits
from supervisor.model.errors import Invalid as InvalidValue
from supervisor.model.spec import Resources


class FieldError(Invalid):
    """A bad value for one key of a request; ``detail`` tells a client which."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.detail = {"key": key}


_UTF8 = ("utf-8", "utf8")


async def text(request: web.Request) -> str:
    """The body as text: UTF-8, as JSON and TOML are (RFC 8259), whatever charset is claimed."""
    charset = request.charset
    if charset is not None and charset.lower() not in _UTF8:
        raise Invalid(f"request body must be UTF-8, not charset {charset!r}")
    try:
        return (await request.read()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"request body is not UTF-8: {exc.reason} at byte {exc.start}") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` so every key may default."""
    body_text = await text(request)
    if not body_text.strip():
        return {}
    try:
        body = json.loads(body_text)
    except json.JSONDecodeError as exc:
        raise Invalid(f"request body is not JSON: {exc}") from None
    except RecursionError:
        raise Invalid("request body is not JSON a server takes: it nests too deeply") from None
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    return body


def only(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``body``, if it has no key but ``keys``: a misspelt key is an error, not a silent default."""
    unknown = sorted(set(body) - set(keys))
    if unknown:
        raise FieldError(unknown[0], f"unknown key (known: {', '.join(keys)})")
    return body


@dataclass(frozen=True)
class Key:
    """One key of a JSON object body: its schema and its parser."""

    schema: Mapping[str, Any]
    parse: Callable[[Any], Any]
    required: bool = False


@dataclass(frozen=True)
class Body:
    """A JSON object body of known keys, each read by its parser."""

    keys: Mapping[str, Key] = field(default_factory=dict)

    @property
    def schema(self) -> dict[str, Any]:
        required = [name for name, key in self.keys.items() if key.required]
        return {"type": "object", "additionalProperties": False,
                "properties": {name: dict(key.schema) for name, key in self.keys.items()},
                **({"required": required} if required else {})}

    async def read(self, request: web.Request) -> dict[str, Any]:
        return self.parse(await json_object(request))

    def parse(self, body: dict[str, Any]) -> dict[str, Any]:
        """The keys given, parsed; a missing required key or a bad value names the key."""
        only(body, *self.keys)
        parsed = {}
        for name, key in self.keys.items():
            if name not in body:
                if key.required:
                    raise FieldError(name, "required")
                continue
            try:
                parsed[name] = key.parse(body[name])
            except InvalidValue as exc:
                raise FieldError(name, str(exc)) from None
        return parsed


def limit_schema(limit: limits.Limit) -> dict[str, Any]:
    return {"description": limit.help,
            "anyOf": [{"type": kind} for kind in limit.json_types]}


RESOURCES_SCHEMA = {"type": "object", "additionalProperties": False, "minProperties": 1,
                    "properties": {limit.name: limit_schema(limit) for limit in limits.FIELDS}}


def resources(body: dict[str, Any]) -> Resources:
    """The limits to change, as ``ctrctl update`` sends them: ``{"memory_max": "256M", ...}``,
    each read by the parser of the definition key of the same name."""
    only(body, *limits.BY_NAME)
    if not body:
        raise Invalid(f"no resource to change (give any of {', '.join(limits.BY_NAME)})")
    try:
        return limits.parse(body)
    except InvalidValue as exc:
        raise FieldError(str(exc.at[0]), str(exc)) from None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
FLAG_SCHEMA = {"type": "string", "enum": [*_TRUE, *_FALSE], "default": ""}
COUNT_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "enum": ["all"]}],
                "default": "all"}


def flag(request: web.Request, key: str) -> bool:
    value = request.query.get(key, "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FieldError(key, f"not a boolean: {value!r}")


def count(request: web.Request, key: str) -> int | None:
    """A line count; absent or ``all`` is None (everything)."""
    value = request.query.get(key, "all")
    if value == "all":
        return None
    if not value.isdigit():
        raise FieldError(key, f"not a count of lines: {value!r}")
    return int(value)
