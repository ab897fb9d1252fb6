"""Running containers registered with systemd-machined, so ``machinectl list`` shows them, as it
shows systemd-nspawn's.

RegisterMachineWithNetwork names the container's PID 1 as the leader (machined finds the unit,
the scope ``ctr-NAME.scope``, from its cgroup) and its host-side veth; the registration is
withdrawn (UnregisterMachine, which leaves the processes alone) when the container ends, before
a restart registers it again: one worker thread keeps the calls in order. A registration made by
the last ctrd stays valid for the container it adopts. Only with the systemd cgroup driver: under
another, PID 1 is in no unit of its own. Where machined is not installed the first attempt says
so, and no more are made.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from supervisor.daemon.states import State
from supervisor.runtime.cgroups.base import CgroupDriver

if TYPE_CHECKING:
    from supervisor.daemon.unit import Unit
    from supervisor.runtime.cgroups.systemd.bus import SystemdBus

log = logging.getLogger(__name__)

MACHINED = ("org.freedesktop.machine1", "/org/freedesktop/machine1",
            "org.freedesktop.machine1.Manager")
SERVICE, CLASS = "ctr", "container"
# A registration by the last ctrd, still right; a container that ended before it was registered.
_SKIPPED = ("MachineExists", "UnixProcessIdUnknown", "NoSuchProcess")
_ABSENT = ("org.freedesktop.DBus.Error.ServiceUnknown",
           "org.freedesktop.DBus.Error.NameHasNoOwner")


class Machines:
    """Registers RUNNING containers, withdraws them when they end; see the module docstring."""

    def __init__(self, bus: SystemdBus) -> None:
        self.bus = bus
        self.available = True
        self._registered: set[str] = set()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="machined")

    def follow(self, unit: Unit) -> None:
        """After each state change of ``unit``."""
        if not self.available:
            return
        container = unit.container
        if unit.state is State.RUNNING and container is not None and container.pid is not None:
            if unit.name not in self._registered:
                self._registered.add(unit.name)
                interfaces = [] if container.attachment is None else [
                    container.attachment.host_ifname]
                self._submit(self.register, unit.name, container.pid, interfaces)
        elif unit.state is not State.STOPPING and unit.name in self._registered:
            self._registered.discard(unit.name)
            self._submit(self.unregister, unit.name)

    def _submit(self, call: Any, *args: Any) -> None:
        done = asyncio.get_running_loop().run_in_executor(self._worker, call, *args)
        done.add_done_callback(_log_failure)

    def register(self, name: str, leader: int, interfaces: list[str]) -> None:
        from supervisor.runtime.cgroups.systemd.bus import BusError

        indices = [socket.if_nametoindex(interface) for interface in interfaces]
        try:
            self.bus.call(*MACHINED, "RegisterMachineWithNetwork", "sayssusai",
                          [name, b"", SERVICE, CLASS, leader, "", indices])
        except BusError as exc:
            if exc.name in _ABSENT:
                self.available = False
                log.info("systemd-machined is not available: containers are not registered")
            elif not exc.name.endswith(_SKIPPED):
                raise

    def unregister(self, name: str) -> None:
        from supervisor.runtime.cgroups.systemd.bus import BusError

        try:
            self.bus.call(*MACHINED, "UnregisterMachine", "s", [name])
        except BusError as exc:
            if not exc.name.endswith("NoSuchMachine"):  # machined saw its scope go first
                raise


def open_machines(cgroups: CgroupDriver) -> Machines | None:
    """Machines on the systemd cgroup driver's bus; None under another driver."""
    if cgroups.name != "systemd":
        return None
    from supervisor.runtime.cgroups.systemd import SystemdDriver  # dbus-next: only here

    return Machines(cgroups.bus) if isinstance(cgroups, SystemdDriver) else None


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("systemd-machined: %s", exc)
