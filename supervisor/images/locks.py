"""flock(2) locks between ctrd and any number of ctrctl processes using one store.

A copy of the runtime's ``exclusive()`` plus a shared mode: the store sits below the runtime and
cannot import it. The kernel drops a lock when its holder dies, so a killed pull never leaves the
store locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def flock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold ``path`` (created if missing) locked, exclusively or shared, for the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
