"""One definition's merged document -> ``ContainerSpec``, with every problem in it reported.

Checks here need nothing but the document, the data directory (does the image exist, or could
registries.conf say where to pull it from?) and the address pool; checks across definitions
(joined namespaces, shared addresses) are in ``crosscheck``.

A joined network (``network.mode = "container:OTHER"``, or the same as ``namespaces.net``) becomes
``NetworkSpec(mode="none")`` with ``NamespaceJoins.net = "container:OTHER"``: the network is the
other container's, so this one gets no veth, address or ports of its own.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any, cast

from supervisor.config import bundle as bundles
from supervisor.config.document import Document
from supervisor.config.reader import Checker, Table
from supervisor.images import locate
from supervisor.model import command as commands
from supervisor.model import health as checks
from supervisor.model import logs as logfiles
from supervisor.model import network as networks
from supervisor.model import resources as limits
from supervisor.model.capabilities import capability_list
from supervisor.model.devices import device_node, device_permissions, device_target
from supervisor.model.errors import Invalid
from supervisor.model.image import pull_policy
from supervisor.model.names import container_name, hostname, user
from supervisor.model.security import paths, seccomp_profile
from supervisor.model.signals import signal
from supervisor.model.spec import (
    DEVICE_ACCESS,
    JOIN_PREFIX,
    JOINABLE,
    ContainerSpec,
    DeviceSpec,
    HealthAction,
    HealthSpec,
    LogsSpec,
    MetricsSpec,
    MountSpec,
    MountType,
    NamespaceJoins,
    NetworkMode,
    NetworkSpec,
    NotifyMode,
    Resources,
    RestartPolicy,
    RestartSpec,
    SecuritySpec,
    StopSpec,
)
from supervisor.model.units import duration
from supervisor.model.values import Parse, absolute_path, boolean, integer, one_of, string

CONTAINER_KEYS = ("image", "command", "hostname", "user", "environment", "working_dir",
                  "read_only", "autostart", "privileged", "init", "notify", "ready_timeout",
                  "pull", "entrypoint", "bundle")
SECTIONS = ("container", "mounts", "network", "resources", "restart", "namespaces", "devices",
            "security", "health", "metrics", "logs")
MOUNT_KEYS = ("source", "target", "read_only", "type", "size")
DEVICE_KEYS = ("path", "target", "permissions")
RATES = tuple(limit.name for limit in limits.FIELDS if limit.table == "network")
NETWORK_KEYS = ("mode", "address", "ports", *RATES)
METRICS_KEYS = ("port", "path")
RESTART_POLICIES = ("no", "on-failure", "always")
# [restart] holds how a container is stopped too (the contract's keys); the spec keeps it apart.
STOP_KEYS = {"stop_timeout": "timeout", "stop_signal": "signal"}

# A key written outside its table, as when [container] is forgotten.
_HINTS = {key: "put it under [container]" for key in CONTAINER_KEYS}


def container_spec(name: str, document: Document, *, data_dir: Path, pool: str) -> ContainerSpec:
    """The spec of definition ``name``; raises ``DefinitionError`` listing every problem."""
    checker = Checker(document)
    try:
        container_name(name)
    except Invalid as e:
        checker.problem((), str(e))
    root = checker.root(SECTIONS, _HINTS)
    container = root.table("container", CONTAINER_KEYS)
    if not container.has("image") and not container.has("bundle"):
        container.problem("image", "missing: a definition needs an image (or a bundle)")
    defaults = ContainerSpec(name=name, image="")
    image = container.value("image", _image(data_dir), "")
    pull = container.value("pull", pull_policy, defaults.pull)
    command = container.get("command", commands.command)
    entrypoint = container.get("entrypoint", commands.entrypoint)
    host_name = container.get("hostname", hostname)
    user_name = container.get("user", user)
    environment = container.get("environment", commands.environment) or ()
    working_dir = container.get("working_dir", absolute_path)
    read_only = container.value("read_only", boolean, False)
    autostart = container.value("autostart", boolean, False)
    privileged = container.value("privileged", boolean, False)
    init = container.value("init", boolean, False)
    notify = container.value("notify", checks.notify_mode, "none")
    ready_timeout = container.value("ready_timeout", checks.interval, defaults.ready_timeout)
    health = _health(root)
    if notify == "healthy" and health is not None and not health.command:
        container.problem("notify", 'notify = "healthy" needs a health check to pass, and '
                          '[health] command = ["NONE"] has none')
    mounts = tuple(_mount(table) for table in root.tables("mounts", MOUNT_KEYS))
    devices = tuple(_device(table) for table in root.tables("devices", DEVICE_KEYS))
    namespaces = root.table("namespaces", (*JOINABLE, "user"))
    joins = _namespaces(namespaces, name)
    network_table = root.table("network", NETWORK_KEYS)
    network, joins = _network(network_table, joins, name, pool)
    if joins.user and joins.owners:
        namespaces.problem("user", "cannot be combined with joining the namespaces of "
                           f"{', '.join(sorted(joins.owners))}: those belong to the user "
                           "namespace they were made in")
    if host_name and joins.uts:
        container.problem("hostname", f"cannot be set: the UTS namespace is joined ({joins.uts})")
    try:
        commands.check_exec_size((*(entrypoint or ()), *(command or ())), environment)
    except Invalid as e:
        container.problem("environment", str(e))
    resources = _resources({"network": network_table, "resources": root.table(
        "resources", [limit.name for limit in limits.FIELDS if limit.table == "resources"],
        {rate: "a rate of the veth: put it under [network]" for rate in RATES})})
    restart = root.table("restart", [*(f.name for f in fields(RestartSpec)), *STOP_KEYS])
    spec = ContainerSpec(
        name=name, image=image, pull=pull, command=command, entrypoint=entrypoint,
        hostname=host_name, user=user_name,
        environment=environment, working_dir=working_dir, read_only=read_only,
        autostart=autostart, privileged=privileged, mounts=mounts, network=network,
        resources=resources, metrics=_metrics(root.table("metrics", METRICS_KEYS), network,
                                                   joins),
        restart=_restart(restart), stop=_stop(restart), namespaces=joins,
        devices=devices,
        security=_security(root.table("security", [f.name for f in fields(SecuritySpec)])),
        init=init, health=health, notify=cast(NotifyMode, notify), ready_timeout=ready_timeout,
        logs=_logs(root.table("logs", [f.name for f in fields(LogsSpec)])),
    )
    if container.has("bundle"):
        spec = bundles.from_bundle(spec, root, container)
    checker.check()
    return spec


def _namespaces(table: Table, name: str) -> NamespaceJoins:
    joins = {kind: _not_self(table, kind, networks.join, name) for kind in JOINABLE}
    return NamespaceJoins(net=joins["net"], ipc=joins["ipc"], uts=joins["uts"], pid=joins["pid"],
                          mnt=joins["mnt"], user=table.value("user", boolean, False))


def _not_self(table: Table, key: str, parse: Parse[str], name: str) -> str | None:
    """The value at ``key``, checked not to be ``container:NAME`` of the container itself."""
    value = table.get(key, parse)
    if value == f"{JOIN_PREFIX}{name}":
        table.problem(key, "a container cannot join its own namespace")
        return None
    return value


def _network(table: Table, joins: NamespaceJoins, name: str,
             pool: str) -> tuple[NetworkSpec, NamespaceJoins]:
    given = _not_self(table, "mode", networks.network_mode, name)
    if given and given.startswith(JOIN_PREFIX):
        if joins.net not in (None, given):
            table.problem("mode", f"conflicts with namespaces.net = {joins.net!r}")
        joins = replace(joins, net=given)
    elif given and joins.net:
        table.problem("mode", f"conflicts with namespaces.net = {joins.net!r} "
                      "(a joined network has no mode of its own)")
    mode = given or "veth"
    if joins.net or mode != "veth":
        reason = (f"not allowed with a joined network ({joins.net}): set it on the container "
                  "that owns the network" if joins.net else
                  f'needs network.mode = "veth" (it is {mode!r})')
        for key in ("address", "ports", *RATES):
            if table.has(key):
                table.problem(key, reason)
        return NetworkSpec(mode="none" if joins.net else cast(NetworkMode, mode)), joins
    address = table.get("address", networks.address(pool))
    ports = table.get("ports", networks.port_mappings) or ()
    return NetworkSpec("veth", address, ports), joins


def _mount(table: Table) -> MountSpec:
    kind = table.get("type", one_of("bind", "tmpfs"))
    if kind is None and not table.has("type"):
        kind = "bind"
    target = table.get("target", absolute_path)
    if not table.has("target"):
        table.problem("target", "missing: a mount needs a target")
    elif target == "/":
        table.problem("target", "must not be / (the image is the container's root)")
    if kind == "tmpfs" and table.has("source"):
        table.problem("source", 'not allowed for type = "tmpfs"')
    if kind == "bind" and not table.has("source"):
        table.problem("source", 'missing: a bind mount needs a source (or type = "tmpfs")')
    if kind == "bind" and table.has("size"):
        table.problem("size", 'only a mount of type = "tmpfs" has a size')
    return MountSpec(
        target=target or "/",
        source=table.value("source", absolute_path, ""),
        type=cast(MountType, kind or "bind"),
        read_only=table.value("read_only", boolean, False),
        size=table.get("size", limits.memory),
    )


def _device(table: Table) -> DeviceSpec:
    """``[[devices]]``: a host device node, its path inside (default the same) and access."""
    if not table.has("path"):
        table.problem("path", 'missing: a device needs the host path of its node, e.g. '
                      '"/dev/fuse"')
    path = table.value("path", device_node, "")
    return DeviceSpec(path=path, target=table.value("target", device_target, path),
                      permissions=table.value("permissions", device_permissions, DEVICE_ACCESS))


def _health(root: Table) -> HealthSpec | None:
    """``[health]``: absent, the image's Healthcheck applies (if any); ``command`` is needed."""
    if not root.has("health"):
        return None
    table = root.table("health", [f.name for f in fields(HealthSpec)])
    if not table.has("command"):
        table.problem("command", 'missing: a health check needs a command, e.g. ["/bin/sh", '
                      '"-c", "wget -q -O- localhost/health"] (["NONE"]: no check)')
    defaults = HealthSpec(command=())
    return HealthSpec(
        command=table.value("command", checks.health_command, ()),
        interval=table.value("interval", checks.interval, defaults.interval),
        timeout=table.value("timeout", checks.interval, defaults.timeout),
        retries=table.value("retries", checks.retries, defaults.retries),
        start_period=table.value("start_period", duration, defaults.start_period),
        on_failure=cast(HealthAction, table.get("on_failure", checks.on_failure)
                        or defaults.on_failure),
    )


def _security(table: Table) -> SecuritySpec:
    defaults = SecuritySpec()
    return SecuritySpec(
        seccomp=table.value("seccomp", seccomp_profile, defaults.seccomp),
        capabilities_add=table.value("capabilities_add", capability_list, ()),
        capabilities_drop=table.value("capabilities_drop", capability_list, ()),
        no_new_privileges=table.value("no_new_privileges", boolean, True),
        read_only_paths=table.value("read_only_paths", paths, ()),
        masked_paths=table.value("masked_paths", paths, ()),
    )


def _resources(tables: dict[str, Table]) -> Resources:
    """Every limit, from the table it is written in (``[resources]``, the rates ``[network]``)."""
    return Resources(**{limit.name: tables[limit.table].get(limit.name, limit.parse)
                        for limit in limits.FIELDS})


def _metrics(table: Table, network: NetworkSpec, joins: NamespaceJoins) -> MetricsSpec:
    """``[metrics]``: the port (and path) of the container's own exporter, at its address."""
    defaults = MetricsSpec()
    port = table.get("port", integer(1, 65535))
    if port is not None and joins.net:
        table.problem("port", f"the address is the joined network's ({joins.net}): declare "
                      "the port in that container's [metrics]")
    elif port is not None and network.mode == "none":
        table.problem("port", 'the container has no address to scrape it at (network.mode = '
                      '"none"); serve it on "veth" or "host"')
    return MetricsSpec(port=port, path=table.value("path", absolute_path, defaults.path))


def _logs(table: Table) -> LogsSpec:
    """``[logs]``: absent, the default cap (a log never fills the disk, as docker's can)."""
    defaults = LogsSpec()
    return LogsSpec(max_size=table.value("max_size", logfiles.max_size, defaults.max_size),
                    max_files=table.value("max_files", logfiles.max_files, defaults.max_files))


def _restart(table: Table) -> RestartSpec:
    defaults = RestartSpec()
    policy = table.get("policy", one_of(*RESTART_POLICIES)) or defaults.policy
    spec = RestartSpec(
        policy=cast(RestartPolicy, policy),
        delay=table.value("delay", duration, defaults.delay),
        max_delay=table.value("max_delay", duration, defaults.max_delay),
        burst=table.value("burst", integer(0), defaults.burst),
        interval=table.value("interval", duration, defaults.interval),
        reset_after=table.value("reset_after", duration, defaults.reset_after),
    )
    if spec.max_delay < spec.delay:
        table.problem("max_delay" if table.has("max_delay") else "delay",
                      f"restart.max_delay ({spec.max_delay:g}s) is shorter than restart.delay "
                      f"({spec.delay:g}s)")
    return spec


def _stop(table: Table) -> StopSpec:
    defaults = StopSpec()
    return StopSpec(timeout=table.value("stop_timeout", duration, defaults.timeout),
                    signal=table.get("stop_signal", signal))


def _image(data_dir: Path) -> Parse[str]:
    """An image there is, or one a pull could fetch (``supervisor.images.locate``): a name under
    DATA_DIR/images, an absolute path, an image of the store, or an OCI reference (a short name
    only where registries.conf says which registry has it). Nothing is pulled or unpacked here."""
    def parse(value: Any) -> str:
        ref = string(value)
        try:
            locate.check(ref, data_dir)
        except (locate.InvalidImage, locate.ImageNotFound) as e:
            raise Invalid(str(e)) from None
        return ref
    return parse
