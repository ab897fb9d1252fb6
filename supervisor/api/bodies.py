"""Request bodies and query parameters turned into typed values, or ``Invalid`` naming the key."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from supervisor.daemon.view import Invalid
from supervisor.model import resources as limits
from supervisor.model.errors import Invalid as InvalidValue
from supervisor.model.signals import signal
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


def signal_number(value: object) -> int:
    """``"TERM"``, ``"SIGTERM"``, ``15`` or ``"15"`` -> 15, as ``kill -s`` accepts them."""
    try:
        return signal(value)
    except InvalidValue as exc:
        raise FieldError("signal", str(exc)) from None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


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
