"""Where a container's files live, and resolving paths inside a root without escaping it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from supervisor.model import defaults


@dataclass(frozen=True)
class Dirs:
    """The two roots every container path derives from (``--state-dir``, ``--data-dir``)."""

    state: Path = defaults.STATE_DIR
    data: Path = defaults.DATA_DIR

    @property
    def images(self) -> Path:
        return self.data / "images"

    @property
    def cache(self) -> Path:
        return self.data / "cache"

    @property
    def containers(self) -> tuple[Path, Path]:
        """The parents of every container's state and data directories."""
        return self.state / "containers", self.data / "containers"

    def container_state(self, name: str) -> Path:
        """Runtime state of one container: its record and the mount point of its root."""
        return self.containers[0] / name

    def container_data(self, name: str) -> Path:
        """The container's writable layers (on disk, not tmpfs: they may grow large)."""
        return self.containers[1] / name


def secure_join(root: str, path: str) -> str:
    """``root/path`` with every symlink resolved as if ``root`` were ``/``.

    A container's image is untrusted: a symlink such as ``/www -> /etc`` must not make a mount land
    on the host's /etc. Missing components are kept literally (they will be created).
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(40, f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)
