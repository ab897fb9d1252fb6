"""One supervised container: its state machine, its restart policy and its current run.

Every state change goes through ``Unit._set`` (checked against ``states.ALLOWED``) and is saved
to the state directory at once, so a ctrd started after a crash knows what each container was
meant to do. Exits are learned from a descriptor the container gives (a pidfd of its shim) on the
event loop: no polling, so a crash-looping container costs ctrd nothing between its starts.

A unit reaches the kernel only through its ``Context.launcher`` and the ``Running`` container
that returns, so it is tested with dummies that never fork (tests/unit/test_unit.py).

Which limits apply: a definition's, from the next start of the container; ``ctrctl update``
changes the running container only, and is kept in the unit's record so that a restarted ctrd
shows and keeps it, until that container's next start from its definition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from supervisor.daemon import health as checks
from supervisor.daemon import readiness, runs
from supervisor.daemon.backoff import Backoff
from supervisor.daemon.images import Images, PullProgress
from supervisor.daemon.logs import LogRelay, append_line, log_path, log_target
from supervisor.daemon.protocols import Launcher, Running
from supervisor.daemon.sockets import Sockets
from supervisor.daemon.starts import StartDurations
from supervisor.daemon.states import AT_REST, State, check_initial, check_transition
from supervisor.daemon.view import Conflict, ContainerView, Observed
from supervisor.model import resources as limits
from supervisor.model.errors import Invalid
from supervisor.model.health import HealthStatus
from supervisor.model.security import UNCONFINED
from supervisor.model.spec import ContainerSpec, HealthSpec, Resources
from supervisor.runtime.cgroups import CgroupDriver
from supervisor.runtime.container import Container, Options
from supervisor.runtime.logwriter import LogTarget
from supervisor.runtime.network.ports import Holders, PortError, Publisher
from supervisor.runtime.paths import Dirs
from supervisor.runtime.warm import WarmPool
from supervisor.systemd import units

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 30.0  # how long a start waits for the container whose namespaces it joins


@dataclass(frozen=True)
class ContainerLauncher:
    """The real one: containers of the runtime, in ``dirs`` under ``cgroups``, started from
    ``warm``'s prepared starts where they fit (supervisor.runtime.warm)."""

    dirs: Dirs
    cgroups: CgroupDriver
    warm: WarmPool | None = None

    def start(self, spec: ContainerSpec, options: Options) -> Running:
        container = Container(spec, self.dirs, self.cgroups, replace(options, warm=self.warm))
        container.start()
        return container

    def adopt(self, spec: ContainerSpec, options: Options) -> Running:
        return Container.adopt(spec, self.dirs, self.cgroups, options)

    async def check(self, container: Running, argv: Sequence[str],
                    timeout: float) -> checks.Result:
        assert isinstance(container, Container)  # made by start or adopt above
        return await checks.exec_check(container, argv, timeout)


@dataclass(frozen=True)
class Context:
    """What every unit shares: where things live and how containers are made."""

    dirs: Dirs
    launcher: Launcher
    pool: str
    bridge: str
    units: dict[str, Unit]  # all units by name, for namespace joins
    relay: LogRelay | None = None  # the journal's; None: the shims write the log files alone
    images: Images | None = None  # None: no pulls (the launcher finds images itself)
    sockets: Sockets = field(default_factory=Sockets)  # systemd's, for socket activation
    ports: Holders = field(default_factory=Holders)  # who publishes which host port
    starts: StartDurations = field(default_factory=StartDurations)  # how long starts took

    def log_path(self, name: str) -> Path:
        return log_path(self.dirs.data, name)

    @property
    def records(self) -> Path:
        return self.dirs.state / "ctrd"

    def record_path(self, name: str) -> Path:
        return self.records / f"{name}.json"


@dataclass
class Record:
    """What ctrd keeps of a unit across its own restarts."""

    definition: str
    want_running: bool = False
    restarts: int = 0
    exit_code: int | None = None
    oom_killed: bool = False
    reason: str | None = None
    instance: bool = False  # launched from a definition under another name; removed when deleted
    started_at: float | None = None
    limits: dict[str, Any] | None = None  # of the current run, as updated live (model.resources)
    state: str = State.STOPPED.value  # as last saved: what a later ctrd resumes (states.INITIAL)
    run: dict[str, Any] | None = None  # the options of a ctrctl run handed to ctrd (daemon.runs)
    ready: bool = False  # the current run is ready (its notify = "container" or "healthy")


@dataclass(frozen=True)
class EndedBy:
    """Why ctrd itself ends the current run (unhealthy, not ready in time): a failure, restarted
    through the back-off whatever the policy when ``restart``."""

    reason: str
    restart: bool = False


# A teardown's removal waits while a restart may be on its way (see _remove_after_restart).
_NO_START_ON_ITS_WAY = tuple(set(State) - {State.BACKOFF, State.STARTING})


class Unit:
    def __init__(self, spec: ContainerSpec, ctx: Context, record: Record,
                 on_change: Callable[[Unit], None] | None = None) -> None:
        self.spec = spec
        self.ctx = ctx
        self.record = record
        self.state = State.STOPPED
        self.container: Running | None = None
        self.limits = spec.resources  # in force in the running container (live updates included)
        self.backoff = Backoff(spec.restart)
        self._on_change = on_change
        self._pidfd: int | None = None
        self._ended: asyncio.Event = asyncio.Event()
        self._changed: asyncio.Condition = asyncio.Condition()
        self._restart: asyncio.TimerHandle | None = None
        self._removal: asyncio.Task[None] | None = None  # of the last teardown's set-aside
        self._published: Publisher | None = None
        self.pulling: PullProgress | None = None  # the image being fetched for this start
        self.health: checks.Checker | None = None  # of the current run, if it has a check
        self.ready = False  # the current run is ready: ``start(wait=True)`` returns
        self.status_text: str | None = None  # for its ctr@ unit's STATUS= (services.py)
        self._notify_socket: readiness.NotifySocket | None = None  # notify = "container"
        self._ready_timer: asyncio.TimerHandle | None = None
        self._ended_by: EndedBy | None = None
        self._kill_timer: asyncio.TimerHandle | None = None
        self.attached: runs.Attached | None = None  # a ctrctl run's stdio, for its next PID 1

    @property
    def name(self) -> str:
        return self.spec.name

    # -- state ------------------------------------------------------------------------------------

    def _set(self, state: State, reason: str | None = None) -> None:
        check_transition(self.state, state)
        log.info("%s: %s -> %s%s", self.name, self.state.name, state.name,
                 f" ({reason})" if reason else "")
        self._become(state, reason)

    def _begin(self, state: State, how: str) -> None:
        """The state this unit begins in after a ctrd restart, from its record or its adopted
        container: no transition, and logged as what it is."""
        check_initial(state)
        log.info("%s: %s", self.name, how)
        self._become(state)

    def _become(self, state: State, reason: str | None = None) -> None:
        self.state = state
        if reason is not None:
            self.record.reason = reason
        self.save()
        if self._on_change:
            self._on_change(self)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, *states: State, timeout: float | None = None) -> State:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.state in states), timeout)
        return self.state

    def save(self) -> None:
        path = self.ctx.record_path(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        self.record.limits = limits.to_json(self.limits) if self.container else None
        self.record.state = self.state.value
        tmp.write_text(json.dumps(asdict(self.record)))
        tmp.rename(path)

    def forget(self) -> None:
        self.ctx.record_path(self.name).unlink(missing_ok=True)
        readiness.forget(self.ctx.dirs.state, self.name)

    def view(self) -> ContainerView:
        container = self.container
        running = self.state in (State.RUNNING, State.STOPPING) and container is not None
        frozen = False
        if running and container is not None and container.cgroup is not None:
            with contextlib.suppress(OSError):
                frozen = container.cgroup.frozen()
        return ContainerView(
            name=self.name,
            definition=self.record.definition,
            state=self.state.value,
            pid=container.pid if running and container else None,
            ip=container.address if running and container else None,
            restarts=self.record.restarts,
            started_at=self.record.started_at,
            image=self.spec.image,
            exit_code=self.record.exit_code,
            oom_killed=self.record.oom_killed,
            frozen=frozen,
            reason=self.record.reason,
            resources=limits.to_json(self.limits if running else self.spec.resources),
            seccomp=UNCONFINED if self.spec.privileged else self.spec.security.seccomp,
            pulling=None if self.pulling is None else self.pulling.to_dict(),
            labels=dict(container.spec.labels) if container else {},
            exposed_ports=list(container.spec.exposed_ports) if container else [],
            health=self._health_status() if running else None,
            ready=running and self.ready,
        )

    def observed(self) -> Observed:
        """For the metrics' thread: each attribute read once, so a change on the event loop
        meanwhile costs at most one stale sample."""
        container, state, record = self.container, self.state, self.record
        attachment = container.attachment if container is not None else None
        return Observed(
            name=self.name, state=state.value, definition=record.definition,
            image=self.spec.image, restarts=record.restarts, exit_code=record.exit_code,
            started_at=container.started_at if container is not None else None,
            address=container.address if container is not None else None,
            cgroup=container.cgroup if container is not None else None,
            interfaces=None if attachment is None else (attachment.host_ifname,
                                                        attachment.container_ifname),
            health=self._health_status() if container is not None else None,
            metrics=container.spec.metrics if container is not None else None,
        )

    # -- starting ---------------------------------------------------------------------------------

    async def start(self, wait: bool = False) -> None:
        """Start by hand: a fresh restart budget; returns once RUNNING (``wait``: and ready) or
        raises with why not."""
        if self.state is State.STOPPING:
            raise Conflict(f"container {self.name} is stopping")
        if self.state is State.STARTING:
            await self.wait_for(State.RUNNING, State.BACKOFF, State.FAILED, State.EXITED,
                                State.STOPPED)
        elif self.state is not State.RUNNING:
            self._cancel_restart()
            self.backoff.reset()
            self.record.want_running = True
            if self.state is State.BACKOFF:
                self._set(State.STOPPED)
            await self._start_once(by_hand=True)
        if not self.running:
            raise Conflict(f"container {self.name} did not start: {self.record.reason}")
        if wait:
            await self._until_ready()

    @property
    def running(self) -> bool:
        return self.state is State.RUNNING

    @property
    def service(self) -> str | None:
        """The systemd unit this container is the face of: a definition's, not an instance's."""
        return None if self.record.instance else units.service_unit(self.name)

    async def _start_once(self, by_hand: bool = False) -> None:
        self._set(State.STARTING)
        began = time.monotonic()
        try:
            await self._pull(by_hand)
            if not self.record.want_running:  # stopped while the image was fetched
                self._set(State.STOPPED)
                return
            joins = await self._namespace_owners()
            self._open_notify_socket()
            self._bind_ports()
            self.container = self._launch(joins)
        except Exception as exc:  # every failure of set-up is reported, none takes ctrd down
            log.warning("%s: start failed: %s", self.name, exc)
            self.container = None
            self._close_ports()
            self._end_run()
            self._after_end(failed=True, ran_for=0.0, reason=str(exc))
            return
        self.record.started_at = self.container.started_at
        self.limits = self.spec.resources
        self._settle_readiness(adopted=False)
        self._set(State.RUNNING, reason="")
        self.ctx.starts.observe(time.monotonic() - began)
        self._watch()
        self._begin_run(adopted=False)
        await self._publish()

    def _bind_ports(self) -> None:
        """Hold the published host ports before the container starts: one that another program
        or container has fails the start with that reason (``supervisor.runtime.network.ports``)."""
        if self.spec.network.ports and self._published is None:
            publisher = Publisher(self.name, self.spec.network.ports, self.ctx.ports)
            publisher.bind()
            self._published = publisher

    async def _publish(self) -> None:
        """Serve the held ports, now that the container has its address."""
        container = self.container
        if self._published is not None and container is not None and container.address:
            await self._published.serve(container.address)

    def _close_ports(self) -> None:
        if self._published is not None:
            self._published.close()
            self._published = None

    async def _pull(self, by_hand: bool) -> None:
        """Fetch the image first if its pull policy says so (STARTING meanwhile, the progress
        in ``pulling``); a pull that fails is a start that fails, with the registry's reason."""
        images = self.ctx.images
        ref = None if images is None else images.to_pull(self.spec, by_hand)
        if images is None or ref is None:
            return
        self.pulling = PullProgress(ref)
        log.info("%s: pulling %s", self.name, ref)
        try:
            await images.pull(ref, self.pulling)
        finally:
            self.pulling = None

    async def _namespace_owners(self) -> dict[str, int]:
        """kind -> PID 1 of the container whose namespace of that kind this one joins."""
        joins = {}
        for kind, other in self.spec.namespaces.joined().items():
            owner = self.ctx.units.get(other)
            if owner is None:
                raise Conflict(f"joins the {kind} namespace of {other}, which is not defined")
            try:
                await owner.wait_for(State.RUNNING, timeout=JOIN_TIMEOUT)
            except TimeoutError:
                raise Conflict(f"{other}, whose {kind} namespace it joins, is not running"
                               ) from None
            assert owner.container is not None and owner.container.pid is not None
            joins[kind] = owner.container.pid
        return joins

    def _launch(self, joins: dict[str, int]) -> Running:
        attached, self.attached = self.attached, None
        log = None if attached is not None else self._log_target()
        attached = attached or self._logged()
        try:
            container = self.ctx.launcher.start(self._launch_spec(), self._options(
                stdio=attached.fds, console=attached.console, log=log, joins=joins,
                listen_fds=self.ctx.sockets.of(self.name)))
        except BaseException:
            if self.ctx.relay is not None:
                self.ctx.relay.release(self.name)
            raise
        finally:
            attached.close()
            if log is not None and log.journal is not None:
                os.close(log.journal)  # the shim has it
        return container

    def _logged(self) -> runs.Attached:
        """PID 1's stdio when no client gave its own: stdin /dev/null, stdout and stderr
        replaced by pipes to its shim, which writes its log (``_log_target``)."""
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        return runs.Attached((null, null, null))

    def _log_target(self) -> LogTarget:
        """Where the shim writes PID 1's output (supervisor.daemon.logs): the log files, and
        a pipe to ctrd's relay into the journal where systemd runs us."""
        journal = None if self.ctx.relay is None else self.ctx.relay.open(self.name, self.service)
        return log_target(self.ctx.dirs.data, self.name, self.spec.logs, journal)

    def _options(self, **extra: Any) -> Options:
        run = self.record.run  # a ctrctl run keeps its writable layer unless --rm, as alone
        remove = self.record.instance if run is None else bool(run.get("rm"))
        return Options(remove=remove, pool=self.ctx.pool, bridge=self.ctx.bridge,
                       keep_bridge=True, unplug_lazily=True, **extra)

    async def adopt(self) -> None:
        """Take over the container a previous ctrd started, running or ended meanwhile."""
        try:
            container = self.ctx.launcher.adopt(self.spec, self._options())
        except LookupError:  # never started, or fully torn down
            self._resume()
            return
        self.container = container
        self.limits = self._recorded_limits()
        if self.ctx.relay is not None and self.record.run is None:  # a run writes to its client
            self.ctx.relay.adopt(self.name, self.service,
                                 container.pid if container.alive() else None)
        if not container.alive():  # it ended while no ctrd watched: its shim recorded how
            self._begin(State.RUNNING, "adopted; it ended while no ctrd watched")
            self._on_exit()
            return
        self._settle_readiness(adopted=True)
        self._begin(State.RUNNING, f"adopted running, PID {container.pid}")
        self._watch()
        self._begin_run(adopted=True)
        try:
            self._bind_ports()
        except PortError as exc:  # taken while no ctrd held it
            self._end_by(str(exc))
            return
        await self._publish()

    def _resume(self) -> None:
        """Nothing is left of the last run: a unit at rest stays as its record says (stopped,
        exited or failed, with its reason), so what the administrator stopped or killed stays
        down; one that was on its way (starting, running, backing off) begins STOPPED, and the
        supervisor starts it again if it is meant to run."""
        recorded = State(self.record.state)
        if recorded in AT_REST and recorded is not State.STOPPED:
            self._begin(recorded, f"{recorded.value}, as the last ctrd left it"
                        f"{f' ({self.record.reason})' if self.record.reason else ''}")

    # -- running ----------------------------------------------------------------------------------

    def _recorded_limits(self) -> Resources:
        """The limits of the adopted run: its record's, which ``ctrctl update`` may have
        changed, else the definition's."""
        if not self.record.limits:
            return self.spec.resources
        try:
            return limits.parse(self.record.limits)
        except Invalid as exc:  # e.g. a CPU this host no longer has
            log.warning("%s: recorded limits not usable (%s); showing the definition's",
                        self.name, exc)
            return self.spec.resources

    def _watch(self) -> None:
        assert self.container is not None
        self._ended = asyncio.Event()
        try:
            self._pidfd = self.container.ended_fd()
        except ProcessLookupError:
            asyncio.get_running_loop().call_soon(self._on_exit)
            return
        asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        """The shim ended, so PID 1 did: collect the status, tear down, apply the policy."""
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        container = self.container
        assert container is not None
        code, ended_at = container.collect()
        oom = container.oom_killed()
        self.record.exit_code, self.record.oom_killed = code, oom
        ran_for = (ended_at or time.time()) - (container.started_at or time.time())
        log.info("%s: exited with %s after %.1fs%s", self.name, code, ran_for,
                 " (OOM killed)" if oom else "")
        self.container = None
        self._end_run()
        self._close_ports()
        asyncio.get_running_loop().create_task(self._teardown_then(
            container, failed=code != 0 or oom, ran_for=ran_for))

    async def _teardown_then(self, container: Running, failed: bool, ran_for: float) -> None:
        """Teardown, then the state the policy says; a restart does not wait for the removal of
        the directories teardown set aside, a stop does.

        A teardown with nothing to wait for runs here, on the loop, as a start's set-up does: in
        the executor, the hand-over to its thread and back took ~1 ms of a 25 ms restart."""
        loop = asyncio.get_running_loop()
        rest: Callable[[], None] | None = None
        try:
            rest = (container.vacate() if container.vacated_at_once()
                    else await loop.run_in_executor(None, container.vacate))
        except Exception:
            log.exception("%s: teardown failed", self.name)
        if self.ctx.relay is not None:  # every writer is gone: relay the rest
            self.ctx.relay.release(self.name)
        ended, ended_by, self._ended_by = self._ended, self._ended_by, None
        if rest is not None and self.state is State.STOPPING:  # a stop leaves nothing behind
            await loop.run_in_executor(None, rest)
            rest = None
        ended.set()
        self._after_teardown(failed, ran_for, ended_by)
        if rest is not None:
            self._removal = loop.create_task(self._remove_after_restart(rest, self._removal))

    async def _remove_after_restart(self, remove: Callable[[], None],
                                    earlier: asyncio.Task[None] | None) -> None:
        """``remove`` (what a teardown set aside) once the restart on its way, if any, has
        run: on two CPUs its thread and the start slowed each other (~1 ms of a restart). After
        an ``earlier`` run's removal, so that awaiting the last one awaits them all."""
        await self.wait_for(*_NO_START_ON_ITS_WAY)
        if earlier is not None:
            await earlier
        await asyncio.get_running_loop().run_in_executor(None, remove)

    def _after_teardown(self, failed: bool, ran_for: float, ended_by: EndedBy | None) -> None:
        if self.state is State.STOPPING:
            self._set(State.STOPPED)
        elif ended_by is not None:
            self._after_end(failed=True, ran_for=ran_for, reason=ended_by.reason,
                            ended_by=ended_by)
        else:
            reason = "OOM killed" if self.record.oom_killed else (
                f"exited with {self.record.exit_code}" if failed else "")
            self._after_end(failed=failed, ran_for=ran_for, reason=reason)

    def _after_end(self, failed: bool, ran_for: float, reason: str,
                   ended_by: EndedBy | None = None) -> None:
        """EXITED, FAILED, or BACKOFF with a restart scheduled, as the policy says (a run ctrd
        ended with ``restart``: whatever it says, as ``on_failure = "restart"`` does; one it
        ended without: FAILED, whatever its exit status)."""
        restart = ended_by is not None and ended_by.restart
        if not (self.record.want_running and (restart or self.backoff.wants_restart(failed))):
            self._set(State.FAILED if failed and (ran_for == 0 or ended_by) else State.EXITED,
                      reason)
            return
        delay = self.backoff.on_end(time.time(), ran_for, failed)
        if delay is None:
            self._set(State.FAILED, f"{reason}; restart limit reached "
                      f"({self.spec.restart.burst} in {self.spec.restart.interval:g}s)")
            return
        self._set(State.BACKOFF, reason)
        loop = asyncio.get_running_loop()
        self._restart = loop.call_later(delay, lambda: loop.create_task(self._restart_now()))

    async def _restart_now(self) -> None:
        self._restart = None
        if self.state is State.BACKOFF:
            self.record.restarts += 1
            await self._start_once()

    def _cancel_restart(self) -> None:
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None

    # -- health and readiness ---------------------------------------------------------------------

    def _health_status(self) -> HealthStatus | None:
        health = self.health
        return None if health is None else health.status

    def _launch_spec(self) -> ContainerSpec:
        """What to start: the spec, with the notify socket's directory mounted and
        ``NOTIFY_SOCKET`` set inside when it tells its readiness (supervisor.daemon.readiness)."""
        if self._notify_socket is None:
            return self.spec
        return replace(self.spec, mounts=(*self.spec.mounts, self._notify_socket.mount),
                       environment=(*self.spec.environment, readiness.ENVIRONMENT))

    def _open_notify_socket(self) -> None:
        if self.spec.notify != "container":
            return
        if self._notify_socket is None:
            self._notify_socket = readiness.NotifySocket(self.ctx.dirs.state, self.name,
                                                         self._on_notify)
        self._notify_socket.open()

    def _on_notify(self, fields: dict[str, str]) -> None:
        """sd_notify from inside: READY=1 makes the run ready, STATUS= goes to its ctr@ unit."""
        if self.container is None:
            return
        if "STATUS" in fields:
            self._show_status(fields["STATUS"])
        if fields.get("READY") == "1" and not self.ready:
            log.info("%s: ready (READY=1 from the container)", self.name)
            self._set_ready()

    def _settle_readiness(self, adopted: bool) -> None:
        """Whether the run about to be RUNNING is ready from the start: one that tells no
        readiness is; an adopted one is as ready as its record says. Settled before the state
        change, so that one record save holds both (each costs 0.2-0.5 ms on ext4)."""
        assert self.container is not None
        self.ready = self.container.spec.notify == "none" or (adopted and self.record.ready)
        self.record.ready = self.ready

    def _begin_run(self, adopted: bool) -> None:
        """A fresh health state ("starting") for the run that has just begun, and its wait for
        readiness; an adopted run keeps what is left of ready_timeout."""
        container = self.container
        assert container is not None
        spec = container.spec  # the image's Healthcheck included
        if adopted and spec.notify == "container":
            self._open_notify_socket()  # the last ctrd's socket went with it: bind it anew
        health = spec.health
        if health is not None and health.command:
            self.health = checks.Checker(health, self._probe, self._on_health)
            self.health.start()
        elif spec.notify == "healthy":
            self._end_by('notify = "healthy", but neither the definition nor the image has a '
                         "health check")
            return
        if not self.ready:
            left = spec.ready_timeout - (time.time() - (container.started_at or time.time()))
            self._ready_timer = asyncio.get_running_loop().call_later(
                max(0.0, left), self._not_ready, spec.ready_timeout)

    def _end_run(self) -> None:
        """The run ended (or never began): no more checks, timers or notifications."""
        if self.health is not None:
            self.health.stop()
            self.health = None
        for timer in (self._ready_timer, self._kill_timer):
            if timer is not None:
                timer.cancel()
        self._ready_timer = self._kill_timer = None
        if self._notify_socket is not None:
            self._notify_socket.close()
        self.ready = self.record.ready = False
        self.status_text = None

    async def _probe(self, spec: HealthSpec) -> checks.Result | None:
        """One check in the running container; none while it is frozen (as docker pauses)."""
        container = self.container
        if container is None or container.pid is None:
            return None
        with contextlib.suppress(OSError):
            if container.cgroup is not None and container.cgroup.frozen():
                return None
        return await self.ctx.launcher.check(container, spec.command, spec.timeout)

    def _on_health(self, checker: checks.Checker, result: checks.Result,
                   changed: bool) -> None:
        """After each check: a failure's output to the container's log and the journal; then
        what the new status means for readiness and ``on_failure``."""
        container = self.container
        if checker is not self.health or container is None:
            return  # the run it checked has ended
        if not result.passed:
            output = result.output.rstrip().decode(errors="replace")
            self._note(f"health check failed ({result.describe()}){': ' if output else ''}"
                       f"{output}")
        if not changed:
            return
        log.info("%s: %s (%s)", self.name, checker.status, result.describe())
        if self.spec.notify != "container":  # else the container's own STATUS= is shown
            self._show_status(checker.status if result.passed
                              else f"{checker.status}: health check {result.describe()}")
        action = checker.spec.on_failure
        if checker.status == "healthy" and container.spec.notify == "healthy" and not self.ready:
            self._set_ready()
        elif checker.status == "unhealthy" and action != "none":
            self._end_by(f"unhealthy: {checker.failures} health checks failed in a row, the "
                         f"last with {result.describe()}", restart=action == "restart",
                         at_once=action == "kill")

    def _note(self, message: str) -> None:
        """A line of ctrd's own in the container's log file and, where it is relayed, journal."""
        if self.ctx.relay is not None:
            self.ctx.relay.note(self.name, self.service, message.encode())
        else:
            append_line(self.ctx.log_path(self.name), message.encode())

    def _show_status(self, text: str) -> None:
        self.status_text = text
        if self._on_change:
            self._on_change(self)

    def _set_ready(self) -> None:
        if self._ready_timer is not None:
            self._ready_timer.cancel()
            self._ready_timer = None
        self.ready = self.record.ready = True
        self.save()
        if self._on_change:
            self._on_change(self)
        asyncio.get_running_loop().create_task(self._notify())

    async def _until_ready(self) -> None:
        """Once the current run is ready; Conflict with the reason if it ends first (also when
        ctrd ends it for not being ready within ``ready_timeout``)."""
        ended = self._ended  # this run's: set once it has ended, and why is on record then
        async with self._changed:
            await self._changed.wait_for(lambda: self.ready or ended.is_set())
        if not self.ready:
            raise Conflict(f"container {self.name} did not become ready: {self.record.reason}")

    def _not_ready(self, timeout: float) -> None:
        self._ready_timer = None
        if not self.ready:
            self._end_by(f"not ready within {timeout:g}s (ready_timeout)")

    def _end_by(self, reason: str, restart: bool = False, at_once: bool = False) -> None:
        """ctrd ends the current run itself, as a failure with ``reason``: SIGKILL ``at_once``,
        else the stop signal and SIGKILL after ``stop_timeout``, as a stop does."""
        container = self.container
        if container is None or self._ended_by is not None or self.state is not State.RUNNING:
            return
        log.warning("%s: %s: ending it%s", self.name, reason,
                    " to restart it" if restart else "")
        self._ended_by = EndedBy(reason, restart)
        if self.health is not None:
            self.health.stop()  # its status stays on show until the run has ended
        if at_once:
            _kill_everything(container)
            return
        container.signal(container.spec.stop.effective_signal)
        self._kill_timer = asyncio.get_running_loop().call_later(
            container.spec.stop.timeout, _kill_everything, container)

    # -- operations -------------------------------------------------------------------------------

    async def stop(self, keep_wanted: bool = False) -> None:
        """The stop signal (SIGTERM) to PID 1, SIGKILL to the whole cgroup after ``stop_timeout``;
        a container stopped on request is never restarted (``keep_wanted``: it is started again
        with the container whose namespaces it joined). It returns once nothing is left of the
        container, what an earlier run's teardown set aside included."""
        await self._stop(keep_wanted)
        if self._removal is not None:
            await asyncio.shield(self._removal)

    async def _stop(self, keep_wanted: bool) -> None:
        self.record.want_running = keep_wanted and self.record.want_running
        self._cancel_restart()
        if self.state is State.STARTING:
            await self.wait_for(State.RUNNING, State.BACKOFF, State.FAILED, State.EXITED,
                                State.STOPPED)
        if self.state is State.RUNNING and self.container is None:
            # It has just ended and is being torn down; that decides its next state.
            await self.wait_for(State.BACKOFF, State.FAILED, State.EXITED)
        if self.state in (State.BACKOFF, State.EXITED, State.FAILED):
            self._set(State.STOPPED)
            return
        if self.state is State.STOPPING:
            await self.wait_for(State.STOPPED)
            return
        if self.state is not State.RUNNING:
            self.save()
            return
        container = self.container
        assert container is not None
        self._set(State.STOPPING)
        # The cgroup may be gone or emptied by someone else: PID 1 is still reached by its pidfd.
        with contextlib.suppress(OSError):
            if container.cgroup is not None and container.cgroup.frozen():
                container.cgroup.thaw()  # a frozen process cannot act on SIGTERM
        container.signal(container.spec.stop.effective_signal)  # the image's StopSignal too
        try:
            await asyncio.wait_for(self._ended.wait(), self.spec.stop.timeout)
        except TimeoutError:
            log.info("%s: still running %.1fs after the stop signal: killing it", self.name,
                     self.spec.stop.timeout)
            _kill_everything(container)
        await self.wait_for(State.STOPPED)

    def kill(self, sig: int) -> None:
        """A signal to PID 1, also while it stops, so a stop that waits for its timeout can be
        cut short. SIGKILL or the container's stop signal is a stop asked for, as ``docker
        kill`` has it: no restart policy brings the container back, nor does a later ctrd;
        after any other signal the policy decides what follows its end."""
        container = self.container
        if self.state not in (State.RUNNING, State.STOPPING) or container is None:
            raise Conflict(f"container {self.name} is not running")
        if sig in (signal.SIGKILL, container.spec.stop.effective_signal):
            self.record.want_running = False
            self.save()
        container.signal(sig)

    async def ended(self) -> None:
        """Once it does not run: its current run, if any, has ended and is torn down."""
        await self.wait_for(State.STOPPED, State.EXITED, State.FAILED, State.BACKOFF)

    def running_container(self) -> Running:
        if self.state is not State.RUNNING or self.container is None:
            raise Conflict(f"container {self.name} is not running")
        return self.container

    async def freeze(self, frozen: bool) -> None:
        cgroup = self.running_container().cgroup
        assert cgroup is not None
        await asyncio.get_running_loop().run_in_executor(
            None, cgroup.freeze if frozen else cgroup.thaw)
        if self._on_change:
            self._on_change(self)

    def update(self, resources: Resources) -> None:
        """New limits for the running container (see the module docstring for how long)."""
        self.running_container().update(resources)
        self.limits = self.limits.merged(resources)
        self.save()

    def redefine(self, spec: ContainerSpec) -> None:
        """A reloaded definition: it applies at the next start (the running one is untouched)."""
        self.spec = replace(spec, name=self.name)
        self.backoff.spec = spec.restart


def _kill_everything(container: Running) -> None:
    """SIGKILL to PID 1 (which takes its pid namespace with it) and to every process of its
    cgroup (those of a joined pid namespace too), whichever of the two still works."""
    container.signal(signal.SIGKILL)
    if container.cgroup is not None:
        with contextlib.suppress(OSError):
            container.cgroup.kill(signal.SIGKILL)
