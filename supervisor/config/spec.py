"""The frozen container specification every other layer consumes.

Config produces it (from TOML, from the graders' JSON, or from ``ctrctl run`` flags); the runtime
builds a container from it and never sees where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

NetworkMode = Literal["veth", "none", "host"]
DEFAULT_POOL = "10.88.0.0/16"  # the veth network's addresses; its first is the bridge's
DEFAULT_BRIDGE = "ctr0"
MountType = Literal["bind", "tmpfs"]


@dataclass(frozen=True)
class MountSpec:
    """One mount inside the container, applied in order; ``source`` is a host path or a tarball."""

    target: str
    source: str = ""
    type: MountType = "bind"
    read_only: bool = False
    size: int | None = None  # tmpfs size in bytes


DeviceType = Literal["a", "b", "c"]  # all, block, character
DEVICE_ACCESS = "rwm"  # read, write, mknod


@dataclass(frozen=True)
class DeviceRule:
    """One entry of a container's device allow-list, as the v1 devices controller and the OCI
    spec write it (``c 1:3 rwm``); a major or minor of None is any (``*``)."""

    type: DeviceType
    major: int | None = None
    minor: int | None = None
    access: str = DEVICE_ACCESS

    def __str__(self) -> str:
        def number(value: int | None) -> str:
            return "*" if value is None else str(value)
        return f"{self.type} {number(self.major)}:{number(self.minor)} {self.access}"


@dataclass(frozen=True)
class DeviceSpec:
    """A host device given to the container, as docker's ``--device``: the node ``path`` of the
    host appears at ``target`` inside, usable with ``permissions``."""

    path: str
    target: str
    permissions: str = DEVICE_ACCESS


@dataclass(frozen=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class NetworkSpec:
    """``mode`` is veth, none or host.

    A network joined from another container (``network.mode = "container:OTHER"`` or
    ``namespaces.net``) is ``mode = "none"`` with ``NamespaceJoins.net`` set: nothing of the
    network is set up for this container, and a runtime that ignored the join would leave it
    isolated rather than give it an address of its own.
    """

    mode: NetworkMode = "veth"
    address: str | None = None  # CIDR; None: the next free address of the pool
    ports: tuple[PortMapping, ...] = ()


@dataclass(frozen=True)
class Resources:
    """Cgroup limits; None leaves the kernel's default (no limit)."""

    memory_max: int | None = None  # bytes
    cpu_quota: float | None = None  # CPUs: 0.5 is half of one CPU
    cpu_weight: int | None = None  # 1..10000, as cgroup v2 cpu.weight
    cpuset_cpus: str | None = None  # "0-2,4"
    pids_max: int | None = None

    def merged(self, update: Resources) -> Resources:
        """These limits with every limit that ``update`` sets replaced."""
        return Resources(
            **{
                name: getattr(update, name) if getattr(update, name) is not None
                else getattr(self, name)
                for name in self.__dataclass_fields__
            }
        )


@dataclass(frozen=True)
class RestartSpec:
    policy: Literal["no", "on-failure", "always"] = "no"
    delay: float = 0.1
    max_delay: float = 30.0
    burst: int = 5
    interval: float = 60.0
    reset_after: float = 10.0
    stop_timeout: float = 10.0
    stop_signal: int = 15  # SIGTERM; sent to PID 1 first, stop_timeout before SIGKILL


@dataclass(frozen=True)
class NamespaceJoins:
    """Namespaces taken from another container (``container:OTHER``) instead of made new."""

    net: str | None = None
    ipc: str | None = None
    uts: str | None = None
    pid: str | None = None
    mnt: str | None = None
    user: bool = False  # a new user namespace mapping root to an unprivileged host range

    def joined(self) -> dict[str, str]:
        """Kind of namespace -> name of the container it is joined from."""
        return {
            kind: value.removeprefix("container:")
            for kind in ("net", "ipc", "uts", "pid", "mnt")
            if (value := getattr(self, kind))
        }

    @cached_property
    def owners(self) -> frozenset[str]:
        """The containers joined from: ctrd asks at every state change of every container."""
        return frozenset(self.joined().values())


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] = ("/bin/sh",)
    hostname: str | None = None  # None: the container's name
    user: str = "root"
    environment: tuple[tuple[str, str], ...] = ()
    working_dir: str = "/"
    read_only: bool = False
    autostart: bool = False
    privileged: bool = False
    mounts: tuple[MountSpec, ...] = ()
    network: NetworkSpec = field(default_factory=NetworkSpec)
    resources: Resources = field(default_factory=Resources)
    restart: RestartSpec = field(default_factory=RestartSpec)
    namespaces: NamespaceJoins = field(default_factory=NamespaceJoins)
    devices: tuple[DeviceSpec, ...] = ()

    @property
    def effective_hostname(self) -> str:
        return self.hostname or self.name


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_name(name: str) -> str:
    """A container name is used in paths, cgroup and unit names: keep it to a safe alphabet."""
    if not _NAME_RE.match(name):
        raise ValueError(
            f"invalid container name {name!r}: use 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name
