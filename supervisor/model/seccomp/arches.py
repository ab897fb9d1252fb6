"""Architectures three ways: libseccomp's names, the kernel's AUDIT_ARCH values, Go's names.

Profiles list libseccomp names (``SCMP_ARCH_X86``); the kernel tells a filter which system-call
ABI a call came through in ``seccomp_data.arch`` (an i386 ``int 0x80`` from a 64-bit process says
AUDIT_ARCH_I386, which is why the default profile covers the compat ABIs); docker's
``includes.arches`` compares Go's GOARCH of the host ("amd64").
"""

from __future__ import annotations

import os

# Every architecture libseccomp 2.5 knows, as profiles name it.
ARCHITECTURES = frozenset({
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
})

# seccomp_data.arch of the ABIs ctr builds for (linux/audit.h). x32 shares x86_64's value and is
# told apart by bit 30 of the system-call number.
AUDIT_ARCH = {
    "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_X32": 0xC000003E,
    "SCMP_ARCH_X86": 0x40000003,
    "SCMP_ARCH_AARCH64": 0xC00000B7,
    "SCMP_ARCH_ARM": 0x40000028,
}
X32_SYSCALL_BIT = 0x40000000

# The host: libseccomp's name, Go's name, and the number of seccomp(2).
_HOSTS = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64", 317),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64", 277),
}


class UnsupportedMachine(RuntimeError):
    """ctr filters system calls on x86_64 and aarch64 hosts only."""


def host() -> tuple[str, str, int]:
    """(libseccomp name, Go name, seccomp(2) number) of this machine."""
    machine = os.uname().machine
    try:
        return _HOSTS[machine]
    except KeyError:
        raise UnsupportedMachine(f"no system-call filter for {machine} hosts") from None
