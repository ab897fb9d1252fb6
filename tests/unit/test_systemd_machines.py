"""Registration with systemd-machined against a stand-in bus: the calls, their order, machined
absent (tests/test_systemd_e2e.py checks ``machinectl`` against a real machined)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from supervisor.daemon.machines import Machines
from supervisor.daemon.states import State
from supervisor.daemon.unit import Unit
from supervisor.systemd.bus import BusError, SystemdBus


class FakeBus:
    def __init__(self, error: str | None = None) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self.error = error

    def call(self, destination: str, path: str, interface: str, member: str, signature: str,
             body: list[Any]) -> list[Any]:
        assert (destination, interface) == ("org.freedesktop.machine1",
                                            "org.freedesktop.machine1.Manager")
        self.calls.append((member, body))
        if self.error:
            raise BusError(self.error, "refused")
        return []


def unit(state: State, pid: int = 0) -> Unit:
    container = SimpleNamespace(pid=pid, attachment=None) if pid else None
    return cast(Unit, SimpleNamespace(name="web", state=state, container=container))


def follow(machines: Machines, *units: Unit) -> None:
    async def run() -> None:
        for u in units:
            machines.follow(u)
        await asyncio.get_running_loop().run_in_executor(machines._worker, lambda: None)

    asyncio.run(run())


def test_registered_while_running_withdrawn_at_the_end_in_order() -> None:
    bus = FakeBus()
    machines = Machines(cast(SystemdBus, bus))
    follow(machines, unit(State.STARTING), unit(State.RUNNING, 41), unit(State.STOPPING, 41),
           unit(State.BACKOFF), unit(State.STARTING), unit(State.RUNNING, 42),
           unit(State.STOPPING, 42), unit(State.STOPPED))
    assert bus.calls == [
        ("RegisterMachineWithNetwork", ["web", b"", "ctr", "container", 41, "", []]),
        ("UnregisterMachine", ["web"]),
        ("RegisterMachineWithNetwork", ["web", b"", "ctr", "container", 42, "", []]),
        ("UnregisterMachine", ["web"]),
    ]


def test_without_machined_one_attempt_then_none() -> None:
    bus = FakeBus("org.freedesktop.DBus.Error.ServiceUnknown")
    machines = Machines(cast(SystemdBus, bus))
    follow(machines, unit(State.RUNNING, 41), unit(State.STOPPED), unit(State.RUNNING, 42))
    assert [member for member, _ in bus.calls] == ["RegisterMachineWithNetwork"]
    assert not machines.available


def test_a_registration_by_the_last_ctrd_is_kept() -> None:
    bus = FakeBus("org.freedesktop.machine1.MachineExists")
    machines = Machines(cast(SystemdBus, bus))
    follow(machines, unit(State.RUNNING, 41))
    assert machines.available and len(bus.calls) == 1
