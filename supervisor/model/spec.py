"""The frozen container specification every other layer consumes.

TOML definitions, API bodies, ``ctrctl run`` flags, the graders' JSON and (next) OCI bundles and
image configs all become a ``ContainerSpec``; the runtime builds a container from it and never
sees where it came from.

What a definition leaves unset (``command``, ``entrypoint``, ``user``, ``working_dir``, the stop
signal: None) an OCI image's config may supply; ``supervisor.images.effective`` makes the
*effective* spec a container runs with, and the ``effective_*`` properties give the last
fallbacks (a shell, root, /, SIGTERM), defined once here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Literal

from supervisor.model.signals import SIGTERM, Signal
from supervisor.model.units import CpuSet

NetworkMode = Literal["veth", "none", "host"]
MountType = Literal["bind", "tmpfs"]
RestartPolicy = Literal["no", "on-failure", "always"]
DeviceType = Literal["a", "b", "c"]  # all, block, character
HealthAction = Literal["none", "kill", "restart"]
NotifyMode = Literal["none", "container", "healthy"]
PullPolicy = Literal["missing", "always", "never"]  # podman's --pull
PULL_POLICIES: tuple[PullPolicy, ...] = ("missing", "always", "never")
DEFAULT_COMMAND = ("/bin/sh",)  # for an image without a config (a directory, a tarball)
DEVICE_ACCESS = "rwm"  # read, write, mknod
JOINABLE = ("net", "ipc", "uts", "pid", "mnt")
JOIN_PREFIX = "container:"


@dataclass(frozen=True)
class MountSpec:
    """One mount inside the container, applied in order; ``source`` is a host path or a tarball."""

    target: str
    source: str = ""
    type: MountType = "bind"
    read_only: bool = False
    size: int | None = None  # tmpfs size in bytes


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
    cpuset_cpus: CpuSet | None = None
    pids_max: int | None = None

    def merged(self, update: Resources) -> Resources:
        """These limits with every limit that ``update`` sets replaced."""
        return Resources(**{f.name: getattr(self, f.name) if getattr(update, f.name) is None
                            else getattr(update, f.name) for f in fields(self)})


@dataclass(frozen=True)
class RestartSpec:
    """When ctrd starts a container again after it ended, and how fast."""

    policy: RestartPolicy = "no"
    delay: float = 0.1  # seconds before the first restart; doubles up to max_delay
    max_delay: float = 30.0
    burst: int = 5  # more failed starts than this within interval: FAILED
    interval: float = 60.0
    reset_after: float = 10.0  # a run this long resets the delay


@dataclass(frozen=True)
class StopSpec:
    """How a container is stopped: ``signal`` to PID 1, then SIGKILL after ``timeout``."""

    timeout: float = 10.0
    signal: Signal | None = None  # None: the image's StopSignal, else SIGTERM

    @property
    def effective_signal(self) -> Signal:
        return SIGTERM if self.signal is None else self.signal


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
        return {kind: value.removeprefix(JOIN_PREFIX) for kind in JOINABLE
                if (value := getattr(self, kind))}

    @cached_property
    def owners(self) -> frozenset[str]:
        """The containers joined from: ctrd asks at every state change of every container."""
        return frozenset(self.joined().values())


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
class HealthSpec:
    """A command run inside the running container every ``interval``, as docker's HEALTHCHECK:
    exit 0 is healthy; ``retries`` failures in a row (those within ``start_period`` of the start
    not counted) make it unhealthy, and ``on_failure`` says what follows. A check still running
    after ``timeout`` is killed and fails. An empty ``command`` is docker's ``NONE``: no check,
    not even the image's."""

    command: tuple[str, ...]
    interval: float = 30.0  # seconds from the start to the first check, and between checks
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0
    on_failure: HealthAction = "none"  # "kill": SIGKILL, the restart policy decides; "restart"


@dataclass(frozen=True)
class SecuritySpec:
    """Confinement beyond the namespaces (``[security]``); ``privileged`` lifts all of it."""

    seccomp: str = "default"  # "default" | "unconfined" | the absolute path of a JSON profile
    capabilities_add: tuple[str, ...] = ()  # canonical names (CAP_NET_ADMIN) or ALL
    capabilities_drop: tuple[str, ...] = ()
    no_new_privileges: bool = True  # false: setuid binaries may raise privileges
    read_only_paths: tuple[str, ...] = ()  # besides the defaults (model.security)
    masked_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str  # a name under DATA_DIR/images, an absolute path, or an OCI reference
    command: tuple[str, ...] | None = None  # None: the image's Cmd (docker's rules, see argv)
    entrypoint: tuple[str, ...] | None = None  # None: the image's Entrypoint; () none at all
    hostname: str | None = None  # None: the container's name
    user: str | None = None  # None: the image's User, else root
    environment: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None  # None: the image's WorkingDir, else /
    read_only: bool = False
    autostart: bool = False
    privileged: bool = False
    mounts: tuple[MountSpec, ...] = ()
    network: NetworkSpec = field(default_factory=NetworkSpec)
    resources: Resources = field(default_factory=Resources)
    restart: RestartSpec = field(default_factory=RestartSpec)
    stop: StopSpec = field(default_factory=StopSpec)
    namespaces: NamespaceJoins = field(default_factory=NamespaceJoins)
    devices: tuple[DeviceSpec, ...] = ()
    security: SecuritySpec = field(default_factory=SecuritySpec)
    init: bool = False  # ctr's tiny init as PID 1, the command as PID 2
    health: HealthSpec | None = None  # None: the image's Healthcheck, if it has one
    notify: NotifyMode = "none"  # when it is ready: "none" (once it runs), "container", "healthy"
    ready_timeout: float = 60.0  # a start not ready by then fails
    pull: PullPolicy = "missing"  # when an OCI reference is fetched from its registry
    labels: tuple[tuple[str, str], ...] = ()  # from the image's config
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", from the image's config

    @property
    def effective_hostname(self) -> str:
        return self.hostname or self.name

    @property
    def argv(self) -> tuple[str, ...]:
        """What PID 1 execs: the entrypoint followed by the command, as docker joins them."""
        return (*(self.entrypoint or ()), *(self.command or ())) or DEFAULT_COMMAND

    @property
    def effective_user(self) -> str:
        return self.user or "root"

    @property
    def effective_working_dir(self) -> str:
        return self.working_dir or "/"
