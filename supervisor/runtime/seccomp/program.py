"""A compiled filter, ready to load, and loading it: the container's last step before execve.

Everything the kernel needs (the instructions, the ``struct sock_fprog`` pointing at them, the
arguments of seccomp(2), the libc function) is built when the :class:`Program` is made, in the
supervisor; after fork, :func:`install` only makes the system call: no libseccomp, no parsing, no
allocation beyond the few small objects of one ctypes call.

seccomp(2), not prctl(PR_SET_SECCOMP), because only seccomp(2) takes the flags an OCI profile may
ask for (SPEC_ALLOW, LOG). TSYNC is not set by default: it filters the caller's other threads
too, but the process it is called in is a freshly forked, single-threaded child that is about to
execve, and execve would end any other thread anyway. The kernel refuses the filter (EACCES)
unless the caller has ``no_new_privs`` set or CAP_SYS_ADMIN in its effective set.
"""

from __future__ import annotations

import ctypes
import os

from supervisor.model.seccomp import arches
from supervisor.runtime.seccomp.bpf import INSTRUCTION, MAX_INSTRUCTIONS

SECCOMP_SET_MODE_FILTER = 1

_syscall = ctypes.CDLL(None, use_errno=True).syscall  # looked up now, not in the child


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Program:
    """A filter as the kernel loads it: ``code`` is the array of ``struct sock_filter``.

    ``key`` names what it was compiled from (profile, capabilities, host, libseccomp), so the
    bytes can be kept on disk under it and a ``Program`` rebuilt from them without libseccomp.
    """

    __slots__ = ("_args", "_buffer", "_fprog", "code", "flags", "key")

    def __init__(self, code: bytes, key: str, flags: int = 0) -> None:
        count, rest = divmod(len(code), INSTRUCTION.size)
        if rest or not 0 < count <= MAX_INSTRUCTIONS:
            raise ValueError(f"not a seccomp program: {len(code)} bytes; the kernel takes 1 to "
                             f"{MAX_INSTRUCTIONS} instructions of {INSTRUCTION.size} bytes")
        self.code = code
        self.key = key
        self.flags = flags
        self._buffer = ctypes.create_string_buffer(code, len(code))
        self._fprog = _SockFprog(count, ctypes.cast(self._buffer, ctypes.c_void_p))
        self._args = (ctypes.c_long(arches.host()[2]), ctypes.c_ulong(SECCOMP_SET_MODE_FILTER),
                      ctypes.c_ulong(flags), ctypes.c_void_p(ctypes.addressof(self._fprog)))

    @property
    def instructions(self) -> int:
        return len(self.code) // INSTRUCTION.size

    def __repr__(self) -> str:
        return f"Program({self.instructions} instructions, key={self.key[:12]})"

    def __reduce__(self) -> tuple[type[Program], tuple[bytes, str, int]]:
        """Pickled as what it is made from: a warm start sends its plan to the process that
        forks PID 1 (runtime/warm.py)."""
        return Program, (self.code, self.key, self.flags)


def install(program: Program) -> None:
    """Load ``program`` into this process; it and everything it execs stay filtered for good."""
    if _syscall(*program._args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {os.strerror(err)}")
