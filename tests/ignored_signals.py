"""Signals ignored by whoever runs ctr, as a CI runner or ``nohup`` may leave them: an ignored
signal stays ignored across fork and exec, so a launcher's is passed on unless ctr resets it."""

from __future__ import annotations

import contextlib
import ctypes
import signal
from collections.abc import Iterator

_SYS_RT_SIGACTION = 13  # x86_64
_SIG_IGN = 1
# glibc's own: its sigaction, and so Python's signal module, refuses to touch it
SIGCANCEL = 32

_libc = ctypes.CDLL(None, use_errno=True)


def _sigaction(sig: int, action: ctypes.Array[ctypes.c_char] | None,
               old: ctypes.Array[ctypes.c_char] | None) -> None:
    if _libc.syscall(_SYS_RT_SIGACTION, sig, action, old, 8) != 0:
        raise OSError(ctypes.get_errno(), f"rt_sigaction {sig}")


@contextlib.contextmanager
def ignoring(*signals: int) -> Iterator[int]:
    """``signals`` ignored in this process (and what it forks meanwhile), as they were after;
    yields their mask as /proc/PID/status shows SigIgn."""
    ignore = ctypes.create_string_buffer(32)  # the kernel's struct sigaction: handler first
    ctypes.c_ulong.from_buffer(ignore).value = _SIG_IGN
    saved = {sig: ctypes.create_string_buffer(32) for sig in signals}
    for sig in signals:
        _sigaction(sig, ignore, saved[sig])
    try:
        yield sum(1 << (sig - 1) for sig in signals)
    finally:
        for sig in signals:
            _sigaction(sig, saved[sig], None)


LAUNCHER_IGNORES = (signal.SIGHUP, SIGCANCEL)
