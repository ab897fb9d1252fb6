"""The exec FIFO between ``create`` and ``start``, which are different processes: PID 1 waits
on a FIFO in the container's state directory (as runc's exec.fifo), which outlives them both.

PID 1 reads it through a descriptor opened before any namespace was entered (``opened``), so
neither a joined mount namespace (whose /proc is another pid namespace's) nor a root without
/proc hides it. Until a writer comes, poll(2) on it blocks: a FIFO that no writer has opened yet
reports nothing. ``start`` opening it for writing finds PID 1 there or, if it is gone, no reader
at all (ENXIO). ``start`` imports this module alone, and nothing heavy.
"""

from __future__ import annotations

import errno
import os
import select

_GO = b"0"


def opened(path: str) -> int:
    """The descriptor PID 1 waits on, opened by the caller before the spawn."""
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def wait(fd: int) -> None:
    """In PID 1: until ``start`` writes; then the descriptor is closed."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll()
    try:
        if os.read(fd, 1) != _GO:
            raise RuntimeError("the start was cut short: the exec FIFO closed unwritten")
    finally:
        os.close(fd)


def release(path: str) -> None:
    """``start``: let the PID 1 waiting on ``path`` go."""
    try:
        writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no reader: PID 1 is gone
            raise RuntimeError("the container's process exited before it was started") \
                from None
        raise
    try:
        os.write(writer, _GO)
    finally:
        os.close(writer)
