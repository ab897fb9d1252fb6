"""Request bodies and query parameters turned into typed values, or ``Invalid`` naming the key."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from supervisor.config.spec import Resources
from supervisor.config.units import parse_cpu_quota, parse_size
from supervisor.config.values import cpu_list
from supervisor.daemon.view import Invalid


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


def _integer(low: int, high: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"not an integer: {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range {low}..{high}")
        return value
    return parse


def _size(value: object) -> int:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    return parse_size(value)


def _cpu_quota(value: object) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"not a CPU quota: {value!r}")
    return parse_cpu_quota(value)


RESOURCE_PARSERS: dict[str, Callable[[object], Any]] = {
    "memory_max": _size,
    "cpu_quota": _cpu_quota,
    "cpu_weight": _integer(1, 10000),
    "cpuset_cpus": cpu_list,
    "pids_max": _integer(1, 2**31 - 1),
}


def resources(body: dict[str, Any]) -> Resources:
    """The limits to change, as ``ctrctl update`` sends them: ``{"memory_max": "256M", ...}``."""
    only(body, *RESOURCE_PARSERS)
    if not body:
        raise Invalid(f"no resource to change (give any of {', '.join(RESOURCE_PARSERS)})")
    values = {}
    for key, value in body.items():
        try:
            values[key] = RESOURCE_PARSERS[key](value)
        except ValueError as exc:
            raise FieldError(key, str(exc)) from None
    return Resources(**values)


def signal_number(value: object) -> int:
    """``"TERM"``, ``"SIGTERM"``, ``15`` or ``"15"`` -> 15, as ``kill -s`` accepts them."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value in signal.valid_signals():
            return value
    elif isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise FieldError("signal", f"not a signal: {value!r}")


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
