"""The v1 freezer: ``freezer.state`` goes THAWED -> FREEZING -> FROZEN.

A freeze can stall in FREEZING while a task is busy in the kernel; writing FROZEN again retries
the tasks not frozen yet, so it is written on every poll.
"""

from __future__ import annotations

import time
from pathlib import Path

from supervisor.runtime.cgroups import files


def freeze(path: Path, timeout: float) -> None:
    state = path / "freezer.state"

    def frozen_now() -> bool:
        files.write(state, "FROZEN")
        return files.read(state) == "FROZEN"

    try:
        files.wait_until(frozen_now, time.monotonic() + timeout, f"{path} to freeze")
    except TimeoutError:
        thaw(path)
        raise


def thaw(path: Path) -> None:
    files.write(path / "freezer.state", "THAWED")


def frozen(path: Path) -> bool:
    return files.read(path / "freezer.state") == "FROZEN"
