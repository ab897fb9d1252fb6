"""A TOML document merged from a main file and its drop-ins, remembering which file set each key.

Merging follows systemd's drop-ins as far as TOML allows: files are applied in order, tables merge
key by key, and any other value (arrays included) replaces what an earlier file set. Each key
keeps the file it came from, so an error can name the drop-in that set a bad value rather than
the main file.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.config.errors import DefinitionError

Key = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_key(key: Key) -> str:
    """``mounts[1].target``; parts that are not bare TOML keys are quoted, as TOML would."""
    text = ""
    for part in key:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            text += f".{name}" if text else name
    return text


def locate(origins: Mapping[Key, Path], key: Key) -> Path | None:
    """The file that set ``key`` or the closest table or array around it."""
    for end in range(len(key), 0, -1):
        if (found := origins.get(key[:end])) is not None:
            return found
    return None


@dataclass
class Document:
    """The merged data, the files it came from (in merge order) and their texts."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()
    texts: tuple[str, ...] = ()
    origins: dict[Key, Path] = field(default_factory=dict)

    def origin(self, key: Key) -> Path | None:
        return locate(self.origins, key) or (self.sources[0] if self.sources else None)

    def add(self, source: Path, text: str) -> None:
        """Merge one more file's text over what is there."""
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise DefinitionError(source, None, f"invalid TOML: {e}") from None
        except RecursionError:
            raise DefinitionError(source, None, "invalid TOML: arrays or tables nested too "
                                  "deeply") from None
        self._merge(self.data, parsed, (), source)
        self.sources = (*self.sources, source)
        self.texts = (*self.texts, text)

    def _merge(self, into: dict[str, Any], new: dict[str, Any], prefix: Key, source: Path) -> None:
        for name, value in new.items():
            key = (*prefix, name)
            old = into.get(name)
            if isinstance(old, dict) and isinstance(value, dict):
                self._merge(old, value, key, source)
                continue
            into[name] = value
            for stale in [k for k in self.origins if k[:len(key)] == key]:
                del self.origins[stale]
            self.origins[key] = source


def read(files: Sequence[Path]) -> Document:
    """The document merged from ``files`` in order; unreadable files and bad TOML raise."""
    document = Document()
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise DefinitionError(path, None, f"cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise DefinitionError(path, None, f"not UTF-8 text: {e}") from None
        document.add(path, text)
    return document
