"""systemd-machined's registration of a container, so ``machinectl list`` shows it as it shows
systemd-nspawn's.

RegisterMachineWithNetwork names the container's PID 1 as the leader (machined finds the unit,
the scope ``ctr-NAME.scope``, from its cgroup) and its host-side interfaces; UnregisterMachine
withdraws it and leaves the processes alone.
"""

from __future__ import annotations

import socket

from supervisor.systemd.bus import BusError, SystemdBus

MACHINED = ("org.freedesktop.machine1", "/org/freedesktop/machine1",
            "org.freedesktop.machine1.Manager")
SERVICE, CLASS = "ctr", "container"
# A registration by the last ctrd, still right; a container that ended before it was registered.
_SKIPPED = ("MachineExists", "UnixProcessIdUnknown", "NoSuchProcess")
_ABSENT = ("org.freedesktop.DBus.Error.ServiceUnknown",
           "org.freedesktop.DBus.Error.NameHasNoOwner")


class MachinedAbsent(RuntimeError):
    """systemd-machined is not installed or not running."""


def register(bus: SystemdBus, name: str, leader: int, interfaces: list[str]) -> None:
    indices = [socket.if_nametoindex(interface) for interface in interfaces]
    try:
        bus.call(*MACHINED, "RegisterMachineWithNetwork", "sayssusai",
                 [name, b"", SERVICE, CLASS, leader, "", indices])
    except BusError as exc:
        if exc.name in _ABSENT:
            raise MachinedAbsent(str(exc)) from None
        if not exc.name.endswith(_SKIPPED):
            raise


def unregister(bus: SystemdBus, name: str) -> None:
    try:
        bus.call(*MACHINED, "UnregisterMachine", "s", [name])
    except BusError as exc:
        if not exc.name.endswith("NoSuchMachine"):  # machined saw its scope go first
            raise
