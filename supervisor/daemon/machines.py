"""Running containers registered with systemd-machined (``supervisor.systemd.machined``).

A container is registered once RUNNING and withdrawn when it ends, before a restart registers it
again: one worker thread keeps the calls in order. A registration made by the last ctrd stays
valid for the container it adopts. Only with the systemd cgroup driver: under another, PID 1 is
in no unit of its own. Where machined is not installed the first attempt says so, and no more
are made.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from supervisor.daemon.protocols import Followed
from supervisor.daemon.states import State
from supervisor.runtime.cgroups.base import CgroupDriver
from supervisor.systemd import machined
from supervisor.systemd.bus import SystemdBus

log = logging.getLogger(__name__)


class Machines:
    """Registers RUNNING containers, withdraws them when they end; see the module docstring."""

    def __init__(self, bus: SystemdBus) -> None:
        self.bus = bus
        self.available = True
        self._registered: set[str] = set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="machined")

    def follow(self, unit: Followed) -> None:
        """After each state change of ``unit``."""
        if not self.available:
            return
        container = unit.container
        if unit.state is State.RUNNING and container is not None and container.pid is not None:
            if unit.name not in self._registered:
                self._registered.add(unit.name)
                interfaces = [] if container.attachment is None else [
                    container.attachment.host_ifname]
                self._submit(self._register, unit.name, container.pid, interfaces)
        elif unit.state is not State.STOPPING and unit.name in self._registered:
            self._registered.discard(unit.name)
            self._submit(machined.unregister, self.bus, unit.name)

    def _submit(self, call: Any, *args: Any) -> None:
        done = asyncio.get_running_loop().run_in_executor(self._worker, call, *args)
        done.add_done_callback(_log_failure)

    def _register(self, name: str, leader: int, interfaces: list[str]) -> None:
        try:
            machined.register(self.bus, name, leader, interfaces)
        except machined.MachinedAbsent:
            self.available = False
            log.info("systemd-machined is not available: containers are not registered")


def open_machines(cgroups: CgroupDriver) -> Machines | None:
    """Machines on the systemd cgroup driver's bus; None under another driver."""
    if cgroups.name != "systemd":
        return None
    from supervisor.runtime.cgroups.systemd import SystemdDriver  # dbus-next: only here

    return Machines(cgroups.bus) if isinstance(cgroups, SystemdDriver) else None


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("systemd-machined: %s", exc)
