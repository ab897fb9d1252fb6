"""Kernel parameters set for a container (``sysctl``): only those that belong to one of its own
namespaces, as runc allows them, so setting one never changes the host."""

from __future__ import annotations

from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.values import string

# Per IPC namespace (ipc/ipc_sysctl.c, ipc/mq_sysctl.c), besides every fs.mqueue.* one.
_IPC = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                  "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
_UTS = frozenset({"kernel.hostname", "kernel.domainname"})


def sysctl_name(value: Any) -> str:
    """``net.ipv4.ip_forward`` (or with slashes, ``net/ipv4/ip_forward``), of a namespace."""
    name = string(value).strip().replace("/", ".")
    if not name or ".." in name or name.startswith(".") or name.endswith("."):
        raise Invalid(f"not a sysctl name: {value!r} (e.g. net.ipv4.ip_forward)")
    namespace_of(name)
    return name


def namespace_of(name: str) -> str:
    """The kind of namespace (ipc, net, uts) the parameter ``name`` belongs to."""
    if name in _IPC or name.startswith("fs.mqueue."):
        return "ipc"
    if name.startswith("net."):
        return "net"
    if name in _UTS:
        return "uts"
    raise Invalid(f"sysctl {name!r} is not in a namespace of the container: setting it would "
                  "change the host (allowed: net.*, fs.mqueue.*, kernel.msg*, kernel.sem, "
                  "kernel.shm*, kernel.hostname, kernel.domainname)")


def sysctl(name: Any, value: Any) -> tuple[str, str]:
    text = string(value)
    if "\n" in text:
        raise Invalid("a sysctl value is one line")
    return sysctl_name(name), text
