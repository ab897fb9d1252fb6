"""Parsers of plain values: strings, booleans, integers, choices, paths, arrays and tables.

A value parser is any callable that takes the raw value and returns the parsed one or raises
:class:`Invalid`. Integers are taken from a string of digits as well, as a command line and a
query string give them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any, TypeVar

from supervisor.model.errors import Invalid, describe

T = TypeVar("T")
Parse = Callable[[Any], T]
UNLIMITED = ("max", "infinity")


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {describe(value)}")
    if "\0" in value:
        raise Invalid("must not contain a NUL character")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe(value)}")
    return value


def integer(low: int, high: int | None = None) -> Parse[int]:
    """An integer in ``low..high`` (no upper bound if ``high`` is None)."""
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected an integer, got {describe(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise Invalid(f"must be {bounds}, got {value}")
        return value
    return parse


def one_of(*choices: str) -> Parse[str]:
    def parse(value: Any) -> str:
        if string(value) not in choices:
            raise Invalid(f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return str(value)
    return parse


def absolute_path(value: Any) -> str:
    path = string(value)
    if not path.startswith("/"):
        raise Invalid(f"must be an absolute path, got {path!r}")
    return posixpath.normpath(path)


def items(parse: Parse[T], value: list[Any]) -> list[T]:
    """``parse`` of each item, an error naming the index of a bad one."""
    parsed = []
    for index, item in enumerate(value):
        try:
            parsed.append(parse(item))
        except Invalid as e:
            raise Invalid(str(e), at=(index, *e.at)) from None
    return parsed


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"expected an array of strings, got {describe(value)}")
    return tuple(items(string, value))


def string_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid(f"expected a table of strings, got {describe(value)}")
    for name, item in value.items():
        try:
            string(item)
        except Invalid as e:
            raise Invalid(str(e), at=(name,)) from None
    return dict(value)


def unlimited(parse: Parse[T]) -> Parse[T | None]:
    """``parse``, or None for "max" / "infinity" (as cgroup and systemd write "no limit")."""
    def parse_or_unlimited(value: Any) -> T | None:
        return None if isinstance(value, str) and value.strip() in UNLIMITED else parse(value)
    return parse_or_unlimited
