"""``ctrctl run`` with no ctrd (or ``--local``): ctrctl starts the container itself.

ctrctl is then the container's parent: it relays its terminal, forwards signals, and exits with
the command's status after removing everything the container made. It dies with ctrctl.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from supervisor.cli import terminal
from supervisor.cli.runargs import FORWARDED_SIGNALS, bad_option, interactive, options
from supervisor.images import locate
from supervisor.images.store import Store
from supervisor.model import defaults, names, runoptions
from supervisor.model import network as networks
from supervisor.model.errors import Invalid
from supervisor.model.spec import ContainerSpec
from supervisor.runtime.cgroups import open_driver
from supervisor.runtime.container import Container, Options
from supervisor.runtime.paths import Dirs

if TYPE_CHECKING:
    from supervisor.runtime.network.ports import Publisher

T = TypeVar("T")


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


def _own(args: argparse.Namespace, key: str, parse: Callable[[str], T], default: str) -> T:
    """A flag of ctrctl's own side (the network of the containers it starts), by its parser."""
    value = getattr(args, key)
    try:
        return parse(default if value is None else value)
    except Invalid as exc:
        bad_option(args, key, str(exc))
        raise  # bad_option exits


def spec_from_args(args: argparse.Namespace) -> ContainerSpec:
    """The container the flags describe, as ctrctl starts it itself; Invalid naming the key of
    a bad value."""
    return runoptions.read(options(args), _pool(args)).spec


def _pool(args: argparse.Namespace) -> str:
    return _own(args, "pool", networks.pool, os.environ.get("CTR_NETWORK_POOL", defaults.POOL))


def _pull(spec: ContainerSpec, args: argparse.Namespace) -> None:
    """Fetch the image first if its pull policy says so, with ``ctrctl pull``'s progress."""
    data_dir = Path(args.data_dir)
    ref = locate.to_pull(locate.locate(spec.image, data_dir), spec.pull, by_hand=True)
    if ref is not None:
        from supervisor.cli.images import pull_with_progress  # a registry client: when pulling

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


def run(args: argparse.Namespace, given: dict[str, object]) -> int:
    """Start the container of the run's options ``given`` (``run.options``), relay until it
    ends, tear it down; its exit status."""
    pool = _pool(args)
    bridge = _own(args, "bridge", names.interface, os.environ.get("CTR_BRIDGE", defaults.BRIDGE))
    try:
        the_run = runoptions.read(given, pool)
    except Invalid as exc:
        if exc.at:
            bad_option(args, str(exc.at[0]), str(exc))
        raise
    spec = the_run.spec
    _pull(spec, args)
    with contextlib.ExitStack() as stack:
        stdio = terminal.open_stdio(stack, terminal=the_run.terminal,
                                    interactive=interactive(args))
        # The bridge stays for the next run, as docker0 (supervisor.runtime.network).
        options = Options(remove=the_run.remove, die_with_parent=True, pool=pool, bridge=bridge,
                          keep_bridge=True, console=stdio.console, stdio=stdio.fds)
        publisher = _bind_ports(spec, stack)
        container = Container(spec, Dirs(args.state_dir, args.data_dir),
                              open_driver(args.cgroup_driver), options)
        master = stdio.master
        forwarder = _SignalForwarder(container, spec.stop.timeout) if master is None else None
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
