"""systemd's manager over the system bus, for a synchronous caller.

The runtime is synchronous and ctrd calls it on its own event loop's thread, so the bus cannot
live on the caller's loop (it would be blocked while we wait for a reply). One daemon thread runs
an asyncio loop of its own with one dbus-next connection; each call is submitted with
run_coroutine_threadsafe and waited on. Jobs are followed through the manager's JobRemoved
signal, which can arrive before the reply that names the job, so recent results are kept.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.message import Message
from dbus_next.signature import Variant

DESTINATION = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
_RECENT_JOBS = 256
_T = TypeVar("_T")

Property = tuple[str, Variant]


def _structs(properties: list[Property]) -> list[list[Any]]:
    """dbus-next marshals a D-Bus struct from a list only."""
    return [list(prop) for prop in properties]


class BusError(RuntimeError):
    """systemd refused a call; ``name`` is the D-Bus error name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{message} ({name})")
        self.name = name
        self.text = message


class JobFailedError(RuntimeError):
    """A job ended with a result other than "done"."""


class SystemdBus:
    """One connection to the system bus, on a thread of its own; every method blocks."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="systemd-bus",
                                        daemon=True)
        self._thread.start()
        self._bus: MessageBus | None = None
        self._results: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._waiters: dict[str, asyncio.Future[str]] = {}
        self._lock = asyncio.Lock()

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    async def _connected(self) -> MessageBus:
        async with self._lock:
            if self._bus is None or not self._bus.connected:
                bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
                bus.add_message_handler(self._on_message)
                await self._call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "AddMatch", "s",
                                 [f"type='signal',sender='{DESTINATION}',interface='{MANAGER}',"
                                  "member='JobRemoved'"])
                await self._call(bus, DESTINATION, PATH, MANAGER, "Subscribe", "", [])
                self._bus = bus
            return self._bus

    @staticmethod
    async def _call(bus: MessageBus, destination: str, path: str, interface: str, member: str,
                    signature: str, body: list[Any]) -> list[Any]:
        reply = await bus.call(Message(destination=destination, path=path, interface=interface,
                                       member=member, signature=signature, body=body))
        if reply is None:
            raise BusError("NoReply", f"{member}: no reply")
        if reply.message_type == MessageType.ERROR:
            raise BusError(reply.error_name or "", str(reply.body[0]) if reply.body else "")
        return list(reply.body)

    def _on_message(self, message: Message) -> None:
        if message.member != "JobRemoved" or message.interface != MANAGER:
            return
        _id, job, _unit, result = message.body
        waiter = self._waiters.pop(job, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
            return
        self._results[job] = result
        while len(self._results) > _RECENT_JOBS:
            self._results.popitem(last=False)

    async def _manager(self, member: str, signature: str, body: list[Any]) -> list[Any]:
        return await self._call(await self._connected(), DESTINATION, PATH, MANAGER, member,
                                signature, body)

    async def _job(self, member: str, signature: str, body: list[Any]) -> str:
        """Call a manager method that returns a job; return once the job is removed."""
        (job,) = await self._manager(member, signature, body)
        if job in self._results:
            result = self._results.pop(job)
        else:
            waiter: asyncio.Future[str] = self._loop.create_future()
            self._waiters[job] = waiter
            try:
                result = await asyncio.wait_for(waiter, self.timeout)
            finally:
                self._waiters.pop(job, None)
        return str(result)

    # -- the calls the driver makes -------------------------------------------------------------

    def start_transient_unit(self, name: str, properties: list[Property]) -> None:
        """Make a transient unit and wait for its start job; JobFailedError unless "done"."""
        result = self._run(self._job("StartTransientUnit", "ssa(sv)a(sa(sv))",
                                     [name, "fail", _structs(properties), []]))
        if result != "done":
            raise JobFailedError(f"starting {name}: job {result}")

    def stop_unit(self, name: str) -> None:
        """Stop a unit and wait for it; a unit that is not loaded is already stopped."""
        try:
            self._run(self._job("StopUnit", "ss", [name, "replace"]))
        except BusError as exc:
            if not exc.name.endswith("NoSuchUnit"):
                raise

    def set_unit_properties(self, name: str, properties: list[Property]) -> None:
        self._run(self._manager("SetUnitProperties", "sba(sv)", [name, True, _structs(properties)]))

    def reset_failed_unit(self, name: str) -> None:
        """Forget a failed unit's state; nothing to forget is no error."""
        try:
            self._run(self._manager("ResetFailedUnit", "s", [name]))
        except BusError as exc:
            if not exc.name.endswith(("NoSuchUnit", "UnitNotFailed")):
                raise

    # -- for ctrd: its units' faces (ctr@NAME.service) and other services ------------------------

    def kill_unit(self, name: str, whom: str, signal: int) -> None:
        """Signal a unit's processes (``whom``: "main", "control" or "all")."""
        self._run(self._manager("KillUnit", "ssi", [name, whom, signal]))

    def active_state(self, name: str) -> str:
        """A unit's ActiveState ("inactive" for one not loaded)."""
        (units,) = self._run(self._manager("ListUnitsByNames", "as", [[name]]))
        return str(units[0][3]) if units else "inactive"

    def main_pid(self, name: str) -> int:
        """The main process of a loaded service (0: none, or no such unit)."""
        try:
            (path,) = self._run(self._manager("GetUnit", "s", [name]))
        except BusError as exc:
            if exc.name.endswith("NoSuchUnit"):
                return 0
            raise
        (value,) = self.call(DESTINATION, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                             ["org.freedesktop.systemd1.Service", "MainPID"])
        return int(value.value)

    def call(self, destination: str, path: str, interface: str, member: str, signature: str,
             body: list[Any]) -> list[Any]:
        """A method of another service on the same connection (e.g. systemd-machined)."""
        async def on_bus() -> list[Any]:
            return await self._call(await self._connected(), destination, path, interface,
                                    member, signature, body)

        return self._run(on_bus())

    def close(self) -> None:
        async def disconnect() -> None:
            if self._bus is not None:
                self._bus.disconnect()  # type: ignore[no-untyped-call]

        self._run(disconnect())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.timeout)
        self._loop.close()
