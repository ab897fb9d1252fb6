"""A loaded definition: its spec and the merged document it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.config.document import Document, Key, format_key
from supervisor.config.errors import Problem
from supervisor.model.spec import ContainerSpec


@dataclass(frozen=True)
class Definition:
    """``sources`` are the main file then the drop-ins in merge order; ``data`` the merged TOML."""

    name: str
    spec: ContainerSpec
    sources: tuple[Path, ...]
    data: Mapping[str, Any]
    document: Document = field(repr=False, compare=False)

    def problem(self, key: Key, reason: str) -> Problem:
        """A problem with the value at ``key``, naming the file that set it."""
        return Problem(self.document.origin(key), format_key(key), reason)
