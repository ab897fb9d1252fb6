"""A scrape collected in a forked child of ctrd, when it is a long one: a copy-on-write image of
the daemon with an interpreter, and so a GIL, of its own.

Collected in a thread of ctrd, a scrape of 2000 containers (0.4 s of Python) shared the GIL with
the event loop, which then waited up to 5-7 ms for its turns (bench/scrape.py). The child:
- takes none of ctrd's locks: a lock another thread held at the fork stays held in the child,
  so what is behind one is taken before the fork (``collector.ForkSafe``);
- keeps none of ctrd's descriptors: a copy of a pipe's end would hold back the end of file that
  another process waits for (a starting container's status pipe, say);
- runs at a lower priority than the loop, and dies with the thread that forked it.

The fork itself holds the GIL too: 0.5-0.7 ms for a ctrd of one container, 2-7 ms at 2000. So a
short collection stays in the thread (``Placement``). Scraped back to back, a ctrd of one
container kept its loop late by 3.5 ms at the 99th percentile when each scrape forked, and 1.6 ms
when none did; at 100 containers (a 16 ms collection) forking was the better, 2.4 against 4-5 ms
(bench/scrape.py).
"""

from __future__ import annotations

import math
import os
import select
import signal
import time
import traceback
from collections.abc import Callable, Iterable
from typing import NoReturn

from supervisor.runtime import syscalls

NICENESS = 10  # on a busy machine the event loop first, then the scrape
FORK_FROM = 0.01  # s: a collection that took this long (50-odd containers) runs in a child
DEADLINE = 120.0  # s: far beyond any scrape (0.4 s at 2000 containers); then the child is killed
_PIECE = 1 << 16  # a pipe's capacity


class CollectionFailed(Exception):
    """The collection raised, or its child ended without the whole answer."""


class Placement:
    """Where one server's collections run: the next in a forked child if the last took
    FORK_FROM or more (the first, as nothing is known yet), else in the calling thread. How
    long a collection takes follows the number of containers, which changes slowly; a scrape
    near the boundary goes either way at no cost to speak of."""

    def __init__(self) -> None:
        self.last = math.inf  # s, the last collection's, in whichever place

    def collected(self, work: Callable[[], Iterable[bytes]]) -> list[bytes]:
        """The pieces ``work()`` makes; CollectionFailed if it fails, here or in the child."""
        begin = time.monotonic()
        try:
            return collected(work) if self.last >= FORK_FROM else _here(work)
        finally:
            self.last = time.monotonic() - begin


def _here(work: Callable[[], Iterable[bytes]]) -> list[bytes]:
    try:
        return list(work())
    except Exception as exc:
        _report()
        raise CollectionFailed(f"the collection failed: {exc!r}") from exc


def _report() -> None:
    """The traceback of the exception being handled, on ctrd's stderr (its journal)."""
    os.write(2, traceback.format_exc().encode())


def collected(work: Callable[[], Iterable[bytes]]) -> list[bytes]:
    """The pieces ``work()`` makes, made in a forked child and read back here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(work, write_end)
    os.close(write_end)
    try:
        pieces = _read_until_end(read_end, pid)
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    if status != 0:
        raise CollectionFailed(f"the collecting process {pid} ended with status "
                               f"{os.waitstatus_to_exitcode(status)}")
    return pieces


def _read_until_end(fd: int, pid: int) -> list[bytes]:
    pieces: list[bytes] = []
    deadline = time.monotonic() + DEADLINE
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not poll.poll(left * 1000):
            os.kill(pid, signal.SIGKILL)
            raise CollectionFailed(f"the collecting process {pid} took over {DEADLINE:g} s")
        piece = os.read(fd, _PIECE)
        if not piece:
            return pieces
        pieces.append(piece)


def _child(work: Callable[[], Iterable[bytes]], out: int) -> NoReturn:
    code = 1
    try:
        syscalls.close_inherited((out,))
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # not ctrd's handlers
            signal.signal(sig, signal.SIG_DFL)
        os.nice(NICENESS)
        for piece in work():
            view = memoryview(piece)
            while view:
                view = view[os.write(out, view):]
        code = 0
    except BaseException:
        _report()
    finally:
        os._exit(code)
