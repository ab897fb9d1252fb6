"""Capabilities: their names (as docker's ``--cap-add`` and profiles spell them) and
linux/capability.h bits, docker's default set, and the set a container gets from it.

A container's capabilities travel as a 64-bit mask (what capset(2) takes), from which the
system-call filter is chosen too (a profile's ``includes.caps``).
"""

from __future__ import annotations

from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.values import items, string

# Index = capability number (linux/capability.h).
_NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAPABILITIES = {name: bit for bit, name in enumerate(_NAMES)}
ALL = "ALL"  # as docker: every capability
EVERY = (1 << len(_NAMES)) - 1

# Docker's (and the OCI default spec's) set for a container's root.
DEFAULT = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
           "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW",
           "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP")


def mask(names: tuple[str, ...]) -> int:
    """The bits of ``names`` (validated by the parser, so every name is known; ALL is all)."""
    result = 0
    for name in names:
        result |= EVERY if name == ALL else 1 << CAPABILITIES[name]
    return result


DEFAULT_MASK = mask(DEFAULT)


def capability(value: Any) -> str:
    """``NET_ADMIN``, ``CAP_NET_ADMIN`` or ``net_admin`` as ``CAP_NET_ADMIN``; ``ALL``."""
    text = string(value).strip().upper()
    if text == ALL:
        return ALL
    name = text if text.startswith("CAP_") else f"CAP_{text}"
    if name not in CAPABILITIES:
        raise Invalid(f"not a capability: {value!r} (e.g. NET_ADMIN, SYS_PTRACE, or ALL)")
    return name


def capability_list(value: Any) -> tuple[str, ...]:
    """An array of capabilities (TOML, JSON)."""
    if not isinstance(value, list):
        raise Invalid(f'expected an array of capabilities, e.g. ["NET_ADMIN"], got {value!r}')
    return tuple(items(capability, value))


def container_set(add: tuple[str, ...], drop: tuple[str, ...]) -> int:
    """What a container's root gets, as docker computes it: the default set with ``add`` and
    without ``drop``; a drop of ALL keeps only what is added."""
    if ALL in drop:
        return mask(add)
    return (DEFAULT_MASK | mask(add)) & ~mask(drop)
