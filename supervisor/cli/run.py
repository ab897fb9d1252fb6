"""``ctrctl run``: one container in the foreground, no daemon needed.

The classic "container shell": with no command on a terminal it gives an interactive /bin/sh.
ctrctl stays the container's parent, relays its terminal, forwards signals, and exits with the
command's status after removing everything the container made.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.cli import terminal
from supervisor.cli.flags import add_limits, flag
from supervisor.cli.images import pull_with_progress
from supervisor.images import locate
from supervisor.images.store import Store
from supervisor.model import command as commands
from supervisor.model import defaults, names
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
    NetworkSpec,
    Resources,
    SecuritySpec,
)
from supervisor.model.units import duration
from supervisor.model.values import absolute_path
from supervisor.runtime.cgroups import open_driver
from supervisor.runtime.container import Container, Options
from supervisor.runtime.paths import Dirs

if TYPE_CHECKING:
    from supervisor.runtime.network.ports import Publisher

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)


def configure(_verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", type=flag(names.container_name),
                   help="container name (default: run-RANDOM)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--image", default="busybox",
                        help="an OCI image (a reference such as registry.example.com/app:1, "
                        "pulled as --pull says, or an image of the store), a name under "
                        "DATA_DIR/images, or a directory, tarball or file-system image; a local "
                        "image wins over a registry's (default: busybox)")
    p.add_argument("--pull", type=flag(pull_policy), default="missing",
                   metavar="missing|always|never",
                   help="when to pull the image from its registry: if the store lacks it "
                   "(default), always, or never")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress while pulling")
    p.add_argument("--entrypoint", type=flag(commands.entrypoint), metavar="CMD",
                   help="replaces the image's Entrypoint: a program, or a JSON array "
                   "('[\"/bin/sh\", \"-c\"]'); \"\" for none. Without a command the image's "
                   "Cmd is dropped too, as docker does")
    source.add_argument("--rootfs", type=flag(absolute_path),
                        help="a directory to use as the read-only lower layer")
    p.add_argument("--hostname", type=flag(names.hostname))
    p.add_argument("--network", choices=networks.NETWORK_MODES, default="veth")
    p.add_argument("--address", help="CIDR address for veth (default: next free in the pool)")
    p.add_argument("--publish", "-p", action="append", default=[],
                   type=flag(networks.port_mapping), metavar=networks.PORT_FORM,
                   help="publish a container port on the host, as docker's -p: on every host "
                   "address (IPv4 and IPv6) or on HOST_IP (127.0.0.1, [::1]); repeatable")
    p.add_argument("--pool", type=flag(networks.pool),
                   default=os.environ.get("CTR_NETWORK_POOL", defaults.POOL),
                   help="address pool of the veth network (default %(default)s)")
    p.add_argument("--bridge", type=flag(names.interface),
                   default=os.environ.get("CTR_BRIDGE", defaults.BRIDGE),
                   help="bridge holding the pool's gateway (default %(default)s)")
    add_limits(p)
    p.add_argument("--user", type=flag(names.user),
                   help="name or uid[:gid] (default: the image's User, else root)")
    p.add_argument("--workdir", type=flag(absolute_path),
                   help="working directory (default: the image's WorkingDir, else /)")
    p.add_argument("--env", "-e", action="append", default=[], type=flag(commands.assignment),
                   metavar="K=V")
    p.add_argument("--mount", "-v", action="append", default=[], type=flag(bind_mount),
                   metavar="SRC:DST[:ro]")
    p.add_argument("--tmpfs", action="append", default=[], type=flag(tmpfs_mount),
                   metavar="DST[:SIZE]")
    p.add_argument("--device", action="append", default=[], type=flag(device),
                   metavar="HOST[:CONTAINER][:PERMS]",
                   help="give the container a host device (docker's --device), e.g. /dev/fuse")
    p.add_argument("--read-only", action="store_true", help="no writable layer over the image")
    p.add_argument("--privileged", action="store_true",
                   help="every capability and device, no system-call filter, nothing masked")
    p.add_argument("--security-opt", action="append", default=[], type=flag(security_opt),
                   metavar="OPT", help="seccomp=unconfined|default|PROFILE.json, "
                   "no-new-privileges[=true|false] (as docker's)")
    p.add_argument("--cap-add", action="append", default=[], type=flag(capability),
                   metavar="CAP", help="a capability besides docker's default set (or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], type=flag(capability),
                   metavar="CAP", help="a capability of the default set to drop (or ALL)")
    p.add_argument("--init", action="store_true",
                   help="ctr's tiny init as PID 1: reaps orphans, forwards every signal")
    p.add_argument("--userns", action="store_true",
                   help="a new user namespace: container root is an unprivileged range of host "
                   "ids (as namespaces.user = true)")
    p.add_argument("--rm", action="store_true", help="discard the writable layer afterwards")
    p.add_argument("--stop-timeout", type=flag(duration), default=10.0, metavar="DURATION",
                   help="after SIGTERM/SIGINT, kill every process of the container this much "
                   "later (a command as PID 1 ignores signals it has no handler for)")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=run)


def bind_mount(text: str) -> MountSpec:
    """``SRC:DST[:ro|rw]``, docker's ``-v``; a relative SRC is taken from here."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise Invalid(f"not a mount: {text!r} (use SRC:DST or SRC:DST:ro)")
    return MountSpec(source=os.path.abspath(parts[0]), target=absolute_path(parts[1]),
                     read_only=len(parts) == 3 and parts[2] == "ro")


def tmpfs_mount(text: str) -> MountSpec:
    """``DST[:SIZE]``, docker's ``--tmpfs``."""
    target, _, size = text.partition(":")
    return MountSpec(target=absolute_path(target), type="tmpfs",
                     size=limits.memory(size) if size else None)


def spec_from_args(args: argparse.Namespace) -> ContainerSpec:
    # Only the first "--" ends the options: any later one is the command's own.
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    command = commands.command(argv) if argv else None  # None: the image's Cmd, or a shell
    commands.check_exec_size((*(args.entrypoint or ()), *(command or ())), args.env)
    address = None if args.address is None else networks.address(args.pool)(args.address)
    ports = networks.distinct_ports(args.publish)
    if ports and args.network != "veth":
        raise Invalid(f"--publish needs --network veth (it is {args.network!r})")
    return ContainerSpec(
        name=args.name or f"run-{secrets.token_hex(4)}",
        image=args.rootfs or args.image,
        pull=args.pull,
        command=command,
        entrypoint=args.entrypoint,
        hostname=args.hostname,
        user=args.user,
        environment=tuple(args.env),
        working_dir=args.workdir,
        read_only=args.read_only,
        privileged=args.privileged,
        mounts=(*args.mount, *args.tmpfs),
        network=NetworkSpec(mode=args.network, address=address, ports=ports),
        resources=Resources(**{limit.name: getattr(args, limit.name) for limit in limits.FIELDS}),
        namespaces=NamespaceJoins(user=args.userns),
        devices=tuple(args.device),
        security=_security(args),
        init=args.init,
    )


def _security(args: argparse.Namespace) -> SecuritySpec:
    options = dict(args.security_opt)  # the last of each kind wins, as in docker
    return SecuritySpec(seccomp=options.get("seccomp", DEFAULT_PROFILE),
                        capabilities_add=tuple(args.cap_add),
                        capabilities_drop=tuple(args.cap_drop),
                        no_new_privileges=options.get("no-new-privileges", "true") == "true")


class _SignalForwarder:
    """Pass signals on to PID 1; a SIGTERM or SIGINT also arms the kill of the whole container.

    Installed before the start: a signal arriving while ctrctl finishes the start (PID 1 already
    runs, so whoever waits for its output may signal) would otherwise kill ctrctl before it could
    tear the container down. Such a signal is held and passed on once the start is done.
    """

    def __init__(self, container: Container, stop_timeout: float) -> None:
        self._container = container
        self._stop_timeout = stop_timeout
        self._held: list[int] | None = []
        self._timer: threading.Timer | None = None
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._on_signal)

    def started(self) -> None:
        held, self._held = self._held or [], None
        for signum in held:
            self._forward(signum)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._held is not None:
            self._held.append(signum)
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        container = self._container
        container.signal(signum)
        if signum in (signal.SIGTERM, signal.SIGINT) and not self._timer and container.cgroup:
            self._timer = threading.Timer(self._stop_timeout, container.cgroup.kill)
            self._timer.daemon = True
            self._timer.start()


def _options(args: argparse.Namespace, stack: contextlib.ExitStack) -> tuple[Options, int | None]:
    """A terminal when asked for, or with no command on a terminal (the classic shell)."""
    shell = not args.command
    stdio = terminal.open_stdio(stack, terminal=args.tty or (shell and sys.stdin.isatty()),
                                interactive=args.interactive or shell)
    options = Options(remove=args.rm, die_with_parent=True, pool=args.pool, bridge=args.bridge,
                      console=stdio.console, stdio=stdio.fds)
    return options, stdio.master


def _pull(spec: ContainerSpec, args: argparse.Namespace) -> None:
    """Fetch the image first if its pull policy says so, with ``ctrctl pull``'s progress."""
    data_dir = Path(args.data_dir)
    ref = locate.to_pull(locate.locate(spec.image, data_dir), spec.pull, by_hand=True)
    if ref is not None:
        pull_with_progress(ref, Store(data_dir), None, args.quiet)


def _bind_ports(spec: ContainerSpec, stack: contextlib.ExitStack) -> Publisher | None:
    """The published host ports, held before the start as ctrd holds them (a port in use
    fails the run before anything is made)."""
    if not spec.network.ports:
        return None
    # asyncio: only a run that publishes loads it
    from supervisor.runtime.network.ports import Publisher

    publisher = Publisher(spec.name, spec.network.ports)
    publisher.bind()
    stack.callback(publisher.close)
    return publisher


def _publish(publisher: Publisher | None, container: Container,
             stack: contextlib.ExitStack) -> None:
    """Serve the held ports from a thread of ctrctl's own until the container ends."""
    if publisher is not None and container.address is not None:
        from supervisor.runtime.network.ports import Background

        stack.callback(Background(publisher, container.address).close)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    _pull(spec, args)
    with contextlib.ExitStack() as stack:
        options, master = _options(args, stack)
        publisher = _bind_ports(spec, stack)
        container = Container(spec, Dirs(args.state_dir, args.data_dir),
                              open_driver(args.cgroup_driver), options)
        forwarder = _SignalForwarder(container, args.stop_timeout) if master is None else None
        container.start()
        stack.callback(container.teardown)
        _publish(publisher, container, stack)
        if master is None:
            assert forwarder is not None
            forwarder.started()
        else:
            assert container.pid is not None
            terminal.relay_until_exit(master, container.pid)
        code = container.wait()
    return code
