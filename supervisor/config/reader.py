"""Reading a merged document key by key: typed values, unknown keys, every problem collected.

A value parser is any callable that takes the raw TOML value and returns the parsed one or
raises ``ValueError`` with the reason; ``Invalid.at`` points inside the value (an array index, a
table key) so the message names ``container.command[2]`` rather than the whole array.
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from supervisor.config import units
from supervisor.config.document import Document, Key, format_key
from supervisor.config.errors import DefinitionError, Problem

T = TypeVar("T")
Parse = Callable[[Any], T]

# TOML's names for the types tomllib returns, for messages a TOML author understands.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
    (dict, "table"), (datetime.datetime, "date-time"), (datetime.date, "date"),
    (datetime.time, "time"),
)
UNLIMITED = ("max", "infinity")


class Invalid(ValueError):
    """A bad value; ``at`` locates the bad part inside it."""

    def __init__(self, reason: str, at: Key = ()) -> None:
        super().__init__(reason)
        self.at = at


def describe(value: Any) -> str:
    """``integer 5``, ``string 'x'``, ``a table``: what a value is, for "expected X, got Y"."""
    kind = next(name for cls, name in _TYPE_NAMES if isinstance(value, cls))
    return {"array": "an array", "table": "a table"}.get(kind, f"{kind} {value!r}")


class Checker:
    """Collects the problems found while reading one document."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.problems: list[Problem] = []

    def problem(self, key: Key, reason: str) -> None:
        """A problem with the value at ``key``; ``()`` for one of the whole document."""
        self.problems.append(Problem(self.document.origin(key), format_key(key) or None, reason))

    def root(self, allowed: Collection[str], hints: Mapping[str, str] | None = None) -> Table:
        return Table(self, (), self.document.data, allowed, hints)

    def check(self) -> None:
        """Raise every problem found so far as one error."""
        if self.problems:
            raise DefinitionError.of(self.problems)


class Table:
    """One TOML table of the document; keys outside ``allowed`` are reported at once."""

    def __init__(self, checker: Checker, key: Key, data: Mapping[str, Any],
                 allowed: Collection[str], hints: Mapping[str, str] | None = None) -> None:
        self.checker, self.key, self.data = checker, key, data
        for name in data:
            if name not in allowed:
                self.problem(name, _unknown(name, allowed, hints or {}))

    def problem(self, name: str, reason: str) -> None:
        self.checker.problem((*self.key, name), reason)

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, parse: Parse[T]) -> T | None:
        """The parsed value, or None if it is absent or bad (and then reported)."""
        if name not in self.data:
            return None
        try:
            return parse(self.data[name])
        except Invalid as e:
            self.checker.problem((*self.key, name, *e.at), str(e))
        except ValueError as e:
            self.problem(name, str(e))
        return None

    def value(self, name: str, parse: Parse[T], default: T) -> T:
        got = self.get(name, parse)
        return default if got is None else got

    def table(self, name: str, allowed: Collection[str]) -> Table:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"expected a table ([{format_key((*self.key, name))}]), "
                         f"got {describe(value)}")
            value = {}
        return Table(self.checker, (*self.key, name), value, allowed)

    def tables(self, name: str, allowed: Collection[str]) -> list[Table]:
        """An array of tables (``[[name]]``), in order."""
        value = self.data.get(name, [])
        if not isinstance(value, list):
            self.problem(name, f"expected an array of tables ([[{name}]]), got {describe(value)}")
            return []
        found = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                found.append(Table(self.checker, (*self.key, name, index), item, allowed))
            else:
                self.checker.problem((*self.key, name, index),
                                     f"expected a table, got {describe(item)}")
        return found


def _unknown(name: str, allowed: Collection[str], hints: Mapping[str, str]) -> str:
    if name in hints:
        return f"unknown key ({hints[name]})"
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (known keys: {', '.join(sorted(allowed))})"


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


def string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid(f"expected an array of strings, got {describe(value)}")
    for index, item in enumerate(value):
        try:
            string(item)
        except Invalid as e:
            raise Invalid(str(e), at=(index,)) from None
    return tuple(value)


def string_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid(f"expected a table of strings, got {describe(value)}")
    for name, item in value.items():
        try:
            string(item)
        except Invalid as e:
            raise Invalid(str(e), at=(name,)) from None
    return dict(value)


def size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"expected a size such as \"256M\", got {describe(value)}")
    return units.parse_size(value)


def duration(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"expected a duration such as \"5s\", got {describe(value)}")
    return units.parse_duration(value)


def unlimited(parse: Parse[T]) -> Parse[T | None]:
    """``parse``, or None for "max" / "infinity" (as cgroup and systemd write "no limit")."""
    def parse_or_unlimited(value: Any) -> T | None:
        return None if isinstance(value, str) and value.strip() in UNLIMITED else parse(value)
    return parse_or_unlimited
