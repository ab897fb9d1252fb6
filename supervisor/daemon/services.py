"""``ctr@NAME.service``, the systemd face of definition NAME, ends when its container does.

``systemctl start ctr@NAME`` runs ``ctrctl start --service NAME`` as the unit's main process
(Type=notify): it asks ctrd to start the container and to answer once it is ready, tells systemd
READY=1, and execs ``sleep infinity``, which only keeps the unit active while ctrd keeps the
container, restarts included: 0.2 MiB PSS (0.1 MiB of it private) a container, measured on
Debian 12, where a Python client polling ctrd cost 12 MiB. ctrd passes the container's
``STATUS=`` (its own over sd_notify, or its health) on to the unit on behalf of that main
process (sd_pid_notify: systemd attributes a notification to the pid its credentials name), so
``systemctl status ctr@NAME`` shows it. ctrd ends the unit when the container comes to an end of
its own, by signalling that main process (KillUnit):

- SIGTERM when it stopped or exited cleanly: systemd takes a main process ended by SIGTERM as a
  clean exit, so the unit goes inactive;
- SIGKILL when it failed (restart budget spent, an error exit the policy does not restart, OOM
  killed): Result=signal, the unit ends failed, and the reason is written to its journal.

Either way ExecStop= (``ctrctl stop NAME``) runs next, as after any end of a main process.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.daemon.protocols import Followed
from supervisor.daemon.states import State
from supervisor.runtime.cgroups.base import CgroupDriver
from supervisor.systemd import notify, units
from supervisor.systemd.journal import SOCKET, JournalWriter

if TYPE_CHECKING:
    from supervisor.systemd.bus import SystemdBus

log = logging.getLogger(__name__)

STARTING_TIMEOUT = 30.0  # how long an end waits for a unit still starting


def ending_signal(unit: Followed) -> int | None:
    """The signal that ends the unit of a container in this state; None while it goes on."""
    record = unit.record
    if unit.service is None:
        return None
    if unit.state is State.FAILED or (
            unit.state is State.EXITED and (record.exit_code or record.oom_killed)):
        return signal.SIGKILL
    if unit.state is State.EXITED or (unit.state is State.STOPPED and not record.want_running):
        return signal.SIGTERM
    return None  # running, between restarts, or stopped to start again with its namespace owner


class Services:
    """Ends the ``ctr@`` units of containers that ended; see the module docstring."""

    def __init__(self, bus: SystemdBus, journal: JournalWriter | None) -> None:
        self.bus = bus
        self.journal = journal
        self._shown: dict[str, str] = {}  # the STATUS= each unit was told last
        # One thread for them all, so that a unit is told its STATUS= lines in their order.
        self._status_thread = ThreadPoolExecutor(1, thread_name_prefix="ctr-status")

    def follow(self, unit: Followed) -> None:
        """After each change of ``unit``: its state, readiness or status."""
        self._show_status(unit)
        sig = ending_signal(unit)
        if sig is None or unit.service is None:
            return
        reason = (f"container {unit.name} failed: {unit.record.reason}"
                  if sig == signal.SIGKILL else None)
        done = asyncio.get_running_loop().run_in_executor(None, self._end, unit.service, sig,
                                                          reason)
        done.add_done_callback(_log_failure)

    def _show_status(self, unit: Followed) -> None:
        text = unit.status_text
        if unit.service is None or text is None or self._shown.get(unit.service) == text:
            return
        self._shown[unit.service] = text
        done = asyncio.get_running_loop().run_in_executor(self._status_thread, self._status,
                                                          unit.service, text)
        done.add_done_callback(_log_failure)

    def _status(self, service: str, text: str) -> None:
        """STATUS= for ``service`` as its main process would send it; none while it has none
        (a container started by ctrctl alone)."""
        pid = self.bus.main_pid(service)
        if pid:
            notify.notify(f"STATUS={text}", pid=pid)

    def _end(self, service: str, sig: int, reason: str | None) -> None:
        from supervisor.systemd.bus import BusError

        if reason is not None and self.journal is not None:
            self.journal.send(reason.encode(), {"PRIORITY": "3", "SYSLOG_IDENTIFIER": "ctrd",
                                                "OBJECT_SYSTEMD_UNIT": service})
        # While the unit starts, its main process (ctrctl start --service) waits on ctrd for
        # this very container: it exits with the reason, or tells READY=1 and becomes the sleep
        # to end. Either way the unit leaves "activating" at once; then it is ended.
        deadline = time.monotonic() + STARTING_TIMEOUT
        while self.bus.active_state(service) == "activating" and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            self.bus.kill_unit(service, "main", sig)
        except BusError as exc:
            # No main process: the container was not started through systemd, or its unit
            # ended already (a start that failed).
            if not exc.name.endswith(("NoSuchUnit", "NoSuchProcess")):
                raise

def open_services(cgroups: CgroupDriver) -> Services | None:
    """Where systemd runs: on the systemd cgroup driver's bus connection, else on one of its own."""
    if not units.booted():
        return None
    from supervisor.runtime.cgroups.systemd import SystemdDriver  # dbus-next: only here
    from supervisor.systemd.bus import SystemdBus

    bus = cgroups.bus if isinstance(cgroups, SystemdDriver) else SystemdBus()
    return Services(bus, JournalWriter() if Path(SOCKET).exists() else None)


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("ending a ctr@ unit: %s", exc)
