"""Classic BPF as seccomp loads it (``struct sock_filter``), and the ENOSYS stub.

libseccomp gives every call it has no rule for the default action, EPERM: also a call newer than
the profile (or than this libseccomp), which a new libc probes for and, on ENOSYS only, replaces
with an older one (clone3 by clone, fchmodat2 by fchmodat). As runc's
``libcontainer/seccomp/patchbpf`` does, a few instructions in front of libseccomp's program answer
ENOSYS for a system-call number above the highest the profile names on that ABI, and hand every
other call to libseccomp's program unchanged::

          ld   [4]                          ; seccomp_data.arch
          jeq  AUDIT_ARCH_X86_64, 0, i386
          ld   [0]                          ; seccomp_data.nr
          jset 0x40000000, x32, 0           ; bit 30 of the number: the x32 ABI
          jgt  HIGHEST_X86_64, enosys, filter
    x32:  jgt  HIGHEST_X32, enosys, filter
    i386: jeq  AUDIT_ARCH_I386, 0, filter
          ld   [0]
          jgt  HIGHEST_I386, enosys, filter
  enosys: ret  ERRNO(ENOSYS)
  filter: (libseccomp's program, which loads the architecture again itself)

Architectures without a section (and an x32 call when the filter has no x32) go straight to
libseccomp, whose bad-architecture action stays in force. The stub reads only the architecture
and the number, never an argument, so the kernel's per-call action cache (Linux 5.11+) can still
prove allowed calls constant and skip the filter for them.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Mapping

from supervisor.model.seccomp import arches

INSTRUCTION = struct.Struct("=HBBI")  # code, jt, jf, k
MAX_INSTRUCTIONS = 4096  # BPF_MAXINSNS

LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGT_K = 0x25
JSET_K = 0x45
RET_K = 0x06
SECCOMP_RET_ERRNO = 0x00050000
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data

# Per AUDIT_ARCH value: the highest number named on the plain ABI and, for x86_64, on x32.
Limits = Mapping[int, tuple[int | None, int | None]]


def enosys_stub(limits: Limits) -> bytes:
    """The instructions to put in front of libseccomp's program (none when nothing is named)."""
    sections = [(audit, highest) for audit, highest in sorted(limits.items())
                if highest != (None, None)]
    if not sections:
        return b""
    code: list[tuple[int, int, str | None, str | None]] = []  # jump targets by label
    labels: dict[str, int] = {}
    code.append((LD_W_ABS, _ARCH, None, None))
    for i, (audit, (plain, x32)) in enumerate(sections):
        following = f"arch{i + 1}" if i + 1 < len(sections) else "filter"
        labels[f"arch{i}"] = len(code)
        code.append((JEQ_K, audit, None, following))
        code.append((LD_W_ABS, _NR, None, None))
        if audit == arches.AUDIT_ARCH["SCMP_ARCH_X86_64"]:  # x32 shares it
            code.append((JSET_K, arches.X32_SYSCALL_BIT,
                         "filter" if x32 is None else f"x32_{i}",
                         "filter" if plain is None else None))
        if plain is not None:
            code.append((JGT_K, plain, "enosys", "filter"))
        if x32 is not None:
            labels[f"x32_{i}"] = len(code)
            code.append((JGT_K, x32, "enosys", "filter"))
    labels["enosys"] = len(code)
    code.append((RET_K, SECCOMP_RET_ERRNO | errno.ENOSYS, None, None))
    labels["filter"] = len(code)

    def offset(position: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - position - 1

    return b"".join(INSTRUCTION.pack(op, offset(pos, jt), offset(pos, jf), k)
                    for pos, (op, k, jt, jf) in enumerate(code))
