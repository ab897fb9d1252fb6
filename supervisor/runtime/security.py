"""Hardening applied to the container's PID 1 just before exec, as runc applies it by default.

Unless ``privileged``: capabilities cut to the OCI/Docker default set (bounding, permitted,
effective, inheritable), no_new_privs so setuid binaries cannot regain what was dropped, then the
switch to the configured user (which drops the remaining capabilities for a non-root user).
"""

from __future__ import annotations

import os

from supervisor.runtime import syscalls
from supervisor.runtime.users import Identity

# linux/capability.h numbers of Docker's default capability set.
DEFAULT_CAPABILITIES = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27,
    "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}
DEFAULT_CAPABILITY_MASK = sum(1 << bit for bit in DEFAULT_CAPABILITIES.values())

# Paths under /proc and /sys that leak host information or allow host changes (runc's defaults).
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def _last_capability() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def drop_capabilities(keep: int = DEFAULT_CAPABILITY_MASK) -> None:
    """Remove every capability outside ``keep`` from the bounding set, then from the others."""
    for cap in range(_last_capability() + 1):
        if not keep & (1 << cap):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)
    syscalls.capset(effective=keep, permitted=keep, inheritable=keep)


def switch_user(identity: Identity) -> None:
    """Become ``identity``; for a non-root uid the kernel clears the remaining capabilities."""
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def set_no_new_privs() -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
