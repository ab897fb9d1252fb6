"""The pids controller: its files (``pids.max``, ``pids.current``) are the same in v1 and v2."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.files import StrPath


def apply(path: Path, resources: Resources) -> None:
    if resources.pids_max is not None:
        files.write(path / "pids.max", resources.pids_max)


def current(path: StrPath) -> int:
    return files.read_int(f"{path}/pids.current")
