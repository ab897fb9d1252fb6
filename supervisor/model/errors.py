"""The error every parser raises, and the words for what a raw value is."""

from __future__ import annotations

import datetime
from typing import Any

Key = tuple[str | int, ...]

# TOML's names for the types tomllib returns (JSON's are a subset), for messages a file's
# author understands.
_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"),
    (dict, "table"), (datetime.datetime, "date-time"), (datetime.date, "date"),
    (datetime.time, "time"), (type(None), "null"),
)


class Invalid(ValueError):
    """A bad value; ``at`` locates the bad part inside it (an array index, a table key), so an
    error can name ``container.command[2]`` rather than the whole array."""

    def __init__(self, reason: str, at: Key = ()) -> None:
        super().__init__(reason)
        self.at = at


def describe(value: Any) -> str:
    """``integer 5``, ``string 'x'``, ``a table``: what a value is, for "expected X, got Y"."""
    kind = next((name for cls, name in _TYPE_NAMES if isinstance(value, cls)), "value")
    return {"array": "an array", "table": "a table", "null": "null"}.get(kind, f"{kind} {value!r}")

