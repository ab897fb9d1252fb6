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
from typing import Any, Literal

from supervisor.model.idmap import IdMap
from supervisor.model.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE
from supervisor.model.mounts import IdMapping, Propagation
from supervisor.model.seccomp.profile import Profile
from supervisor.model.signals import SIGTERM, Signal
from supervisor.model.units import CpuSet

NetworkMode = Literal["veth", "none", "host"]
MountType = Literal["bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"]
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
    # The finer options of an OCI bundle's mounts (model/mounts.py):
    flags: tuple[str, ...] = ()  # mount flags by name: nosuid, nodev, noexec, relatime, ...
    data: tuple[str, ...] = ()  # the file system's own options: mode=755, newinstance, ...
    propagation: Propagation | None = None  # of the new mount; None: as the runtime makes it
    recursive: bool = True  # a bind takes the mounts under its source along (rbind)
    # An idmapped bind (an OCI mount's idmap/ridmap, or its own uidMappings/gidMappings): the
    # source's owners seen through ``id_map``, or through the container's user namespace's
    # maps when None; ridmap maps the mounts under it too.
    idmap: IdMapping | None = None
    id_map: IdMap | None = None


@dataclass(frozen=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    host_ip: str | None = None  # where on the host; None: every address, IPv4 and IPv6


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
class DeviceLimit:
    """A per-device limit's value for one block device (``io_read_bps = { "/dev/vda" = "10M" }``):
    the device as given (its node, or ``MAJ:MIN``), its numbers, and the value; None lifts the
    limit ("max")."""

    device: str
    major: int
    minor: int
    value: int | None

    @property
    def numbers(self) -> str:
        """``MAJ:MIN``, as the kernel's files name the device."""
        return f"{self.major}:{self.minor}"


DeviceLimits = tuple[DeviceLimit, ...]


def _merged_devices(old: DeviceLimits, new: DeviceLimits) -> DeviceLimits:
    """Per device, as the kernel keeps them: a new value replaces that device's only."""
    by_device = {limit.numbers: limit for limit in old}
    by_device.update({limit.numbers: limit for limit in new})
    return tuple(by_device.values())


@dataclass(frozen=True)
class Resources:
    """Limits changeable live: the cgroup's, and the bandwidth of the container's veth (tc);
    None leaves the kernel's default (no limit)."""

    memory_max: int | None = None  # bytes
    cpu_quota: float | None = None  # CPUs: 0.5 is half of one CPU
    cpu_weight: int | None = None  # 1..10000, as cgroup v2 cpu.weight
    cpuset_cpus: CpuSet | None = None
    pids_max: int | None = None
    memory_high: int | None = None  # bytes: above it the container is throttled and reclaimed
    memory_swap_max: int | None = None  # bytes of swap, besides memory_max
    io_read_bps: DeviceLimits | None = None  # bytes per second
    io_write_bps: DeviceLimits | None = None
    io_read_iops: DeviceLimits | None = None  # operations per second
    io_write_iops: DeviceLimits | None = None
    egress_rate: int | None = None  # bytes per second the container sends on its veth
    ingress_rate: int | None = None  # bytes per second it receives

    def merged(self, update: Resources) -> Resources:
        """These limits with every limit that ``update`` sets replaced (per-device ones per
        device)."""
        def merged(old: Any, new: Any) -> Any:
            if new is None:
                return old
            return _merged_devices(old, new) if isinstance(new, tuple) and old else new
        return Resources(**{f.name: merged(getattr(self, f.name), getattr(update, f.name))
                            for f in fields(self)})


@dataclass(frozen=True)
class MetricsSpec:
    """Where the container serves Prometheus metrics of its own (``[metrics]``): ctrd's service
    discovery (``GET /v1/sd/prometheus``) lists it as a target."""

    port: int | None = None  # None: nothing to discover
    path: str = "/metrics"


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
    # An OCI bundle's: (kind, namespace file) joined by path, and kinds kept the host's.
    paths: tuple[tuple[str, str], ...] = ()
    host: tuple[str, ...] = ()
    # With ``user``: its uid and gid maps (an OCI bundle's); None: the runtime picks one range
    # (userns.py), or reads those of the namespace joined by path.
    user_ids: IdMap | None = None

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
class DeviceNode:
    """A node made in the container's /dev by its numbers, as an OCI bundle's ``linux.devices``
    lists them (opening it is up to the cgroup's allow-list, ``CgroupSpec.device_rules``)."""

    path: str  # under /dev
    type: Literal["c", "b", "u", "p"]  # character, block, unbuffered character, FIFO
    major: int = 0
    minor: int = 0
    mode: int = 0o666  # permission bits
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Rlimit:
    """A resource limit of the container's processes (setrlimit(2)); model/rlimits.py."""

    type: str  # RLIMIT_NOFILE, ...
    soft: int
    hard: int  # rlimits.UNLIMITED for none


@dataclass(frozen=True)
class ProcessSettings:
    """How the container's process is set up besides its command, user and environment (what an
    OCI bundle's ``process`` holds beyond those); the defaults are the runtime's own."""

    rlimits: tuple[Rlimit, ...] = ()
    umask: int | None = None  # None: the runtime's (022)
    oom_score_adj: int | None = None  # None: the runtime's
    groups: tuple[int, ...] | None = None  # supplementary gids; None: the image's /etc/group
    terminal: bool = False  # the process gets a terminal (ctr-runtime: --console-socket)
    console_size: tuple[int, int] | None = None  # (rows, columns) of that terminal


@dataclass(frozen=True)
class Hook:
    """A program the runtime runs at a point of the container's life, with its state on stdin."""

    path: str
    args: tuple[str, ...] = ()  # argv, argv[0] included
    env: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None  # seconds; None: no limit


@dataclass(frozen=True)
class Hooks:
    """The OCI lifecycle's hooks, by the point they run at (runtime/hooks.py says where)."""

    prestart: tuple[Hook, ...] = ()  # deprecated by the spec: as create_runtime
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


@dataclass(frozen=True)
class SystemdScope:
    """The transient scope of a container under systemd: ``unit`` in ``slice``."""

    slice: str
    unit: str


@dataclass(frozen=True)
class CgroupSpec:
    """Where the container's cgroup is and what is written into it beyond ``Resources``; the
    defaults are ctr's (``ctr/NAME``, ``ctr-NAME.scope``)."""

    path: str | None = None  # cgroupfs: under the hierarchies' root (an OCI cgroupsPath)
    scope: SystemdScope | None = None  # systemd driver
    files: tuple[tuple[str, str], ...] = ()  # cgroup v2 files written as they are (OCI unified)
    # The device allow-list besides the runtime's defaults; None: the defaults and the
    # container's devices. (DeviceRule("a"),) allows every device.
    device_rules: tuple[DeviceRule, ...] | None = None


@dataclass(frozen=True)
class RootSpec:
    """How the image becomes the container's root, and what is mounted on it by default."""

    in_place: bool = False  # the image directory itself, written in place (an OCI bundle's root)
    propagation: Propagation | None = None  # of the container's / (None: private)
    # ctr's /proc, /sys, /dev (nodes, devpts, shm, mqueue) and /tmp under ``mounts``, and the
    # default masked and read-only paths besides ``security``'s; False: exactly ``mounts`` and
    # ``security``'s paths, as an OCI bundle lists them (its /dev gets the default nodes).
    system_mounts: bool = True


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
class CapabilitySets:
    """A process's five capability sets, as masks of linux/capability.h bits (an OCI bundle's
    ``process.capabilities``)."""

    bounding: int = 0
    effective: int = 0
    inheritable: int = 0
    permitted: int = 0
    ambient: int = 0


@dataclass(frozen=True)
class SecuritySpec:
    """Confinement beyond the namespaces (``[security]``); ``privileged`` lifts all of it."""

    seccomp: str = "default"  # "default" | "unconfined" | the absolute path of a JSON profile
    capabilities_add: tuple[str, ...] = ()  # canonical names (CAP_NET_ADMIN) or ALL
    capabilities_drop: tuple[str, ...] = ()
    no_new_privileges: bool = True  # false: setuid binaries may raise privileges
    read_only_paths: tuple[str, ...] = ()  # besides the defaults (model.security)
    masked_paths: tuple[str, ...] = ()
    # A profile given inline (an OCI bundle's linux.seccomp), in force instead of the one
    # ``seccomp`` names, which then says where it came from.
    seccomp_profile: Profile | None = None
    # The five sets an OCI process gives (its bounding set is also ``capabilities_add``);
    # None: ctr's one set, from ``capabilities_add``/``_drop``, for root (none for another user).
    capability_sets: CapabilitySets | None = None


@dataclass(frozen=True)
class LogsSpec:
    """``[logs]``: DATA_DIR/logs/NAME.log is rotated at ``max_size`` bytes, and NAME.log with
    its rotated files NAME.log.1 .. make ``max_files`` at most (model/logs.py)."""

    max_size: int = DEFAULT_MAX_SIZE
    max_files: int = DEFAULT_MAX_FILES


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
    metrics: MetricsSpec = field(default_factory=MetricsSpec)
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
    logs: LogsSpec = field(default_factory=LogsSpec)
    labels: tuple[tuple[str, str], ...] = ()  # from the image's config
    exposed_ports: tuple[str, ...] = ()  # "80/tcp", from the image's config
    # An OCI bundle's (and any definition's) settings beyond those above:
    root: RootSpec = field(default_factory=RootSpec)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    device_nodes: tuple[DeviceNode, ...] = ()
    cgroup: CgroupSpec = field(default_factory=CgroupSpec)
    sysctl: tuple[tuple[str, str], ...] = ()  # namespaced kernel parameters (model/sysctl.py)
    domainname: str | None = None  # NIS domain name of a new UTS namespace
    hooks: Hooks = field(default_factory=Hooks)
    annotations: tuple[tuple[str, str], ...] = ()

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
