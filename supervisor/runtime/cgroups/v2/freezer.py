"""The v2 freezer: ``cgroup.freeze`` asks, ``cgroup.events`` says when every process is frozen."""

from __future__ import annotations

import time
from pathlib import Path

from supervisor.runtime.cgroups import files


def freeze(path: Path, timeout: float) -> None:
    files.write(path / "cgroup.freeze", 1)
    try:
        files.wait_until(lambda: frozen(path), time.monotonic() + timeout, f"{path} to freeze")
    except TimeoutError:
        thaw(path)
        raise


def thaw(path: Path) -> None:
    files.write(path / "cgroup.freeze", 0)


def frozen(path: Path) -> bool:
    return files.read_keyed(path / "cgroup.events").get("frozen") == 1
