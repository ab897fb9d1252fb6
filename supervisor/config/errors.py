"""Errors in definitions and in ctrd.toml, each naming the file and the key a user has to fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self


@dataclass(frozen=True)
class Problem:
    """One thing wrong: the file that set the value (if any), its key path and why."""

    source: Path | None
    key: str | None
    reason: str

    def __str__(self) -> str:
        return ": ".join(str(part) for part in (self.source, self.key, self.reason)
                         if part is not None)


class ConfigError(ValueError):
    """Settings that cannot be used; ``str()`` is ``SOURCE: KEY: REASON``, a line per problem.

    Validation reports every problem it finds at once (as ``systemd-analyze verify`` does), so a
    user fixes a file in one go; ``source``, ``key`` and ``reason`` are those of the first one.
    """

    def __init__(self, source: Path | None, key: str | None, reason: str,
                 *, more: Sequence[Problem] = ()) -> None:
        self.problems = (Problem(source, key, reason), *more)
        self.source, self.key, self.reason = source, key, reason
        super().__init__("\n".join(str(problem) for problem in self.problems))

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> Self:
        first, *more = problems
        return cls(first.source, first.key, first.reason, more=more)


class DefinitionError(ConfigError):
    """A container definition that cannot be used."""


class DefinitionNotFound(DefinitionError, LookupError):
    """No definition of that name in the search path (HTTP 404, not 400)."""
