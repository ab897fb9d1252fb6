"""Run a function inside another process's network namespace, or a new one, without moving
this process.

setns(CLONE_NEWNET) changes only the calling thread, and a socket stays in the namespace it was
created in, so a short-lived thread joins the namespace, does its work and ends; the rest of the
process (ctrd's event loop included) never leaves the host's namespace. A thread costs about
0.1 ms; pyroute2's ``netns=`` forks a helper process for the same thing and costs about 5 ms.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

from supervisor.runtime import syscalls

T = TypeVar("T")


def open_netns(pid: int) -> int:
    """A descriptor for the network namespace of process ``pid`` (close it when done)."""
    return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def run_in_netns(netns_fd: int, function: Callable[[], T]) -> T:
    """``function()`` called in a thread that has joined ``netns_fd``; its result or exception."""
    return _in_thread(lambda: syscalls.setns(netns_fd, syscalls.CLONE_NEWNET), function)


def new_netns(function: Callable[[], T]) -> tuple[int, T]:
    """A new network namespace, as a descriptor (it lives as long as that is open, or a process
    in it), and what ``function()`` returned, called inside it: a socket it opens stays there."""
    def inside() -> tuple[int, T]:
        fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            return fd, function()
        except BaseException:
            os.close(fd)
            raise

    return _in_thread(lambda: syscalls.unshare(syscalls.CLONE_NEWNET), inside)


def _in_thread(enter: Callable[[], None], function: Callable[[], T]) -> T:
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            enter()
            outcome.append(function())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="ctr-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]
