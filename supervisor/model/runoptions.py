"""``ctrctl run``'s options (docker run's flags, as typed) in one JSON object, and the spec they
make.

``ctrctl run`` reads no flag value itself: it gathers them under their keys and hands them either
to ctrd (``POST /v1/containers/run``) or, starting the container itself, to ``spec`` here. Either
way every value is read by the parser of the definition key it stands for, so a flag means the
same, with the same words for a bad value, whether ctrd runs or not. An error names the key
(``Invalid.at``); ctrctl shows it as its flag's.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from supervisor.model import command as commands
from supervisor.model import names
from supervisor.model import network as networks
from supervisor.model import resources as limits
from supervisor.model.capabilities import capability
from supervisor.model.devices import device
from supervisor.model.errors import Invalid
from supervisor.model.image import pull_policy
from supervisor.model.security import DEFAULT_PROFILE, security_opt
from supervisor.model.spec import (
    ContainerSpec,
    MountSpec,
    NamespaceJoins,
    NetworkMode,
    NetworkSpec,
    SecuritySpec,
    StopSpec,
)
from supervisor.model.units import duration
from supervisor.model.values import Parse, absolute_path, boolean, items, one_of, string

T = TypeVar("T")
DEFAULT_IMAGE = "busybox"
DEFAULT_STOP_TIMEOUT = StopSpec().timeout

SINGLE = ("name", "image", "rootfs", "pull", "entrypoint", "hostname", "network", "address",
           "user", "workdir", "stop_timeout", "cwd", *limits.BY_NAME)
REPEATED = ("env", "mount", "tmpfs", "device", "security_opt", "cap_add", "cap_drop",
            "publish", "command")
FLAGS = ("read_only", "privileged", "init", "userns", "rm", "tty")
KEYS = (*SINGLE, *REPEATED, *FLAGS)  # every option a run takes
_network_mode = one_of(*networks.NETWORK_MODES)  # no "container:": ctrctl runs it alone


def bind_mount(text: str, cwd: str = "/") -> MountSpec:
    """``SRC:DST[:ro|rw]``, docker's ``-v``; a relative SRC is taken from ``cwd`` (ctrctl's)."""
    parts = string(text).split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise Invalid(f"not a mount: {text!r} (use SRC:DST or SRC:DST:ro)")
    return MountSpec(source=posixpath.normpath(posixpath.join(cwd, parts[0])),
                     target=absolute_path(parts[1]),
                     read_only=len(parts) == 3 and parts[2] == "ro")


def tmpfs_mount(text: str) -> MountSpec:
    """``DST[:SIZE]``, docker's ``--tmpfs``."""
    target, _, size = string(text).partition(":")
    return MountSpec(target=absolute_path(target), type="tmpfs",
                     size=limits.memory(size) if size else None)


def _at(key: str, parse: Callable[[], T]) -> T:
    try:
        return parse()
    except Invalid as exc:
        raise Invalid(str(exc), at=(key, *exc.at)) from None


class _Options:
    """The options given, each read at most once by its parser, errors naming the key."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - set(KEYS))
        if unknown:
            raise Invalid(f"unknown option (known: {', '.join(KEYS)})", at=(unknown[0],))
        self._options = options

    def one(self, key: str, parse: Parse[T], default: T) -> T:
        value = self._options.get(key)
        return default if value is None else _at(key, lambda: parse(value))

    def each(self, key: str, parse: Parse[T]) -> tuple[T, ...]:
        value = self._options.get(key, [])
        if not isinstance(value, list):
            raise Invalid(f"expected an array of strings, got {value!r}", at=(key,))
        return tuple(_at(key, lambda: items(parse, value)))

    def required(self, key: str, parse: Parse[T]) -> T:
        if not self.has(key):
            raise Invalid("required", at=(key,))
        value = self._options[key]
        return _at(key, lambda: parse(value))

    def flag(self, key: str) -> bool:
        return self.one(key, boolean, False)

    def has(self, key: str) -> bool:
        return self._options.get(key) is not None

    def limits(self) -> dict[str, Any]:
        return {key: self._options[key] for key in limits.BY_NAME if self.has(key)}


@dataclass(frozen=True)
class Run:
    """What a run's options make: the container, whether its writable layer goes with it, and
whether it runs on a terminal."""

    spec: ContainerSpec
    remove: bool  # --rm
    terminal: bool  # -t: its stdin, stdout and stderr are a terminal, its controlling one


def read(options: Mapping[str, Any], pool: str) -> Run:
    """The run ``options`` describe; ``pool``: the veth network's (for ``address``)."""
    given = _Options(options)
    return Run(_spec(given, pool), given.flag("rm"), given.flag("tty"))


def _spec(given: _Options, pool: str) -> ContainerSpec:
    cwd = given.one("cwd", absolute_path, "/")
    argv = given.each("command", string)
    command = _at("command", lambda: commands.command(list(argv))) if argv else None
    entrypoint = given.one("entrypoint", commands.entrypoint, None)
    environment = given.each("env", commands.assignment)
    _at("command", lambda: commands.check_exec_size((*(entrypoint or ()), *(command or ())),
                                                    environment))
    security = dict(given.each("security_opt", security_opt))  # the last of each kind wins
    network = cast(NetworkMode, given.one("network", _network_mode, "veth"))
    ports = _at("publish", lambda: networks.distinct_ports(
        given.each("publish", networks.port_mapping)))
    if ports and network != "veth":
        raise Invalid(f"--publish needs --network veth (it is {network!r})", at=("publish",))
    rootfs = given.one("rootfs", absolute_path, None)
    if rootfs is not None and given.has("image"):
        raise Invalid("give --image or --rootfs, not both", at=("rootfs",))
    return ContainerSpec(
        name=given.required("name", names.container_name),
        image=rootfs or given.one("image", string, DEFAULT_IMAGE),
        pull=given.one("pull", pull_policy, "missing"),
        command=command,
        entrypoint=entrypoint,
        hostname=given.one("hostname", names.hostname, None),
        user=given.one("user", names.user, None),
        environment=environment,
        working_dir=given.one("workdir", absolute_path, None),
        read_only=given.flag("read_only"),
        privileged=given.flag("privileged"),
        mounts=(*given.each("mount", lambda text: bind_mount(text, cwd)),
                *given.each("tmpfs", tmpfs_mount)),
        network=NetworkSpec(mode=network, ports=ports,
                            address=given.one("address", networks.address(pool), None)),
        resources=limits.parse(given.limits()),
        stop=StopSpec(timeout=given.one("stop_timeout", duration, DEFAULT_STOP_TIMEOUT)),
        namespaces=NamespaceJoins(user=given.flag("userns")),
        devices=given.each("device", device),
        security=SecuritySpec(
            seccomp=security.get("seccomp", DEFAULT_PROFILE),
            capabilities_add=given.each("cap_add", capability),
            capabilities_drop=given.each("cap_drop", capability),
            no_new_privileges=security.get("no-new-privileges", "true") == "true"),
        init=given.flag("init"),
    )
