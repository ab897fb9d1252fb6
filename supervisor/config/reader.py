"""Reading a merged document key by key with the model's parsers: unknown keys and every
problem collected, each naming the file and key that set it."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from supervisor.config.document import Document, Key, format_key
from supervisor.config.errors import DefinitionError, Problem
from supervisor.model.errors import Invalid, describe
from supervisor.model.values import Parse

T = TypeVar("T")


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

    def table(self, name: str, allowed: Collection[str],
              hints: Mapping[str, str] | None = None) -> Table:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"expected a table ([{format_key((*self.key, name))}]), "
                         f"got {describe(value)}")
            value = {}
        return Table(self.checker, (*self.key, name), value, allowed, hints)

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
