"""ctrd's Unit — one supervised container's state machine — against dummy containers that never
fork, as supervisord tests its process class: the launcher hands out ``FakeRunning``s whose end
is a pipe the test writes to, so every transition, restart, stop and update is seen exactly."""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from supervisor.daemon.health import Result
from supervisor.daemon.protocols import Running
from supervisor.daemon.states import State
from supervisor.daemon.unit import Context, Record, Unit
from supervisor.daemon.view import Conflict
from supervisor.model.spec import ContainerSpec, Resources, RestartSpec, StopSpec
from supervisor.runtime.cgroups import Cgroup, CgroupStats
from supervisor.runtime.container import Options
from supervisor.runtime.network import Attachment
from supervisor.runtime.paths import Dirs


class FakeCgroup(Cgroup):
    """Records the limits applied; nothing in it is real."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.applied: list[Resources] = []

    def directories(self) -> builtins.list[Path]:
        return []

    def procs_paths(self) -> builtins.list[Path]:
        return []

    def apply(self, resources: Resources) -> None:
        self.applied.append(resources)

    def stats(self) -> CgroupStats:
        raise OSError("no statistics in a fake")

    def oom_kills(self) -> int:
        raise OSError("no statistics in a fake")

    def freeze(self, timeout: float = 5.0) -> None: ...
    def thaw(self) -> None: ...

    def frozen(self) -> bool:
        return False

    def pids(self) -> builtins.list[int]:
        return []

    def populated(self) -> bool:
        return False

    def _kill_all(self) -> None: ...


class FakeRunning:
    """A container that runs until the test (or a signal it was told to end on) ends it."""

    def __init__(self, number: int, ends_on: frozenset[int],
                 spec: ContainerSpec | None = None) -> None:
        self.spec = spec or ContainerSpec(name="web", image="busybox")
        self.pid: int | None = 1000 + number
        self.started_at: float | None = time.time()
        self.cgroup: Cgroup | None = FakeCgroup()
        self.attachment: Attachment | None = None
        self.signals: list[int] = []
        self.torn_down = False
        self.removed = False  # what its teardown set aside
        self.removal_began: float | None = None  # time.monotonic() of that removal's start
        self.vacated_in: threading.Thread | None = None
        self.vacate_gate: threading.Event | None = None  # a teardown waiting for processes
        self.removal_gate: threading.Event | None = None  # that removal waits for it
        self.at_once = True  # vacate has nothing to wait for (else: in the executor)
        self.code: int | None = None
        self._ends_on = ends_on
        self._read, self._write = os.pipe()

    @property
    def address(self) -> str | None:
        return None

    def alive(self) -> bool:
        return self.code is None

    def ended_fd(self) -> int:
        return self._read  # the unit closes it once it has seen the end

    def end(self, code: int) -> None:
        self.code = code
        os.write(self._write, b"x")
        os.close(self._write)

    def collect(self) -> tuple[int | None, float | None]:
        return self.code, time.time()

    def oom_killed(self) -> bool:
        return False

    def signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig in self._ends_on and self.code is None:
            self.end(128 + sig)

    def update(self, resources: Resources) -> None:
        assert self.cgroup is not None
        self.cgroup.apply(resources)

    def vacated_at_once(self) -> bool:
        return self.at_once

    def vacate(self) -> Callable[[], None]:
        self.vacated_in = threading.current_thread()
        if self.vacate_gate is not None:
            self.vacate_gate.wait(5)
        self.torn_down = True

        def remove() -> None:
            self.removal_began = time.monotonic()
            if self.removal_gate is not None:
                self.removal_gate.wait(5)
            self.removed = True
        return remove


class FakeLauncher:
    def __init__(self, ends_on: frozenset[int] = frozenset({signal.SIGTERM, signal.SIGKILL})):
        self.started: list[FakeRunning] = []
        self.adoptable: FakeRunning | None = None
        self.failure: Exception | None = None  # raised by the next start
        self.ends_on = ends_on
        self.options: list[Options] = []  # of every start
        self.started_at: list[float] = []  # time.monotonic() of every start
        self.check_results: list[Result] = []  # handed out in order by check, then passes
        self.checked: list[tuple[int | None, tuple[str, ...]]] = []  # (PID 1, argv) of each

    def start(self, spec: ContainerSpec, options: Options) -> FakeRunning:
        self.options.append(options)
        self.started_at.append(time.monotonic())
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
        self.started.append(FakeRunning(len(self.started), self.ends_on, spec))
        return self.started[-1]

    def adopt(self, spec: ContainerSpec, options: Options) -> FakeRunning:
        if self.adoptable is None:
            raise LookupError("no record")
        return self.adoptable

    async def check(self, container: Running, argv: Sequence[str], timeout: float) -> Result:
        self.checked.append((container.pid, tuple(argv)))
        return self.check_results.pop(0) if self.check_results else Result(0)


RESTARTING = RestartSpec(policy="on-failure", delay=0.01, max_delay=0.04, burst=2,
                         interval=60.0, reset_after=10.0)


def make_unit(tmp_path: Path, launcher: FakeLauncher, record: Record | None = None,
              **spec: Any) -> Unit:
    ctx = Context(dirs=Dirs(tmp_path / "state", tmp_path / "data"), launcher=launcher,
                  pool="10.88.0.0/16", bridge="ctr0", units={})
    unit = Unit(ContainerSpec(name="web", image="busybox", **spec), ctx,
                record or Record(definition="web"))
    ctx.units["web"] = unit
    return unit


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


def states_of(unit: Unit) -> list[State]:
    """Every state ``unit`` goes through from now on."""
    seen: list[State] = []
    original = unit._set

    def recording(state: State, reason: str | None = None) -> None:
        seen.append(state)
        original(state, reason)

    unit._set = recording  # type: ignore[method-assign]
    return seen


def test_start_runs_the_container_and_a_clean_exit_ends_it(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=RESTARTING)
    seen = states_of(unit)

    async def scenario() -> None:
        await unit.start()
        assert unit.state is State.RUNNING and unit.view().pid == 1000
        launcher.started[0].end(0)
        await unit.wait_for(State.EXITED)

    run(scenario)
    assert seen == [State.STARTING, State.RUNNING, State.EXITED]
    assert launcher.started[0].torn_down
    assert unit.record.exit_code == 0 and unit.record.restarts == 0


@pytest.mark.parametrize(("notify", "ready"), [("none", True), ("container", False)])
def test_a_start_saves_the_record_once_per_state_readiness_included(
        tmp_path: Path, notify: str, ready: bool) -> None:
    """Each save is a file replaced (0.2-0.5 ms on ext4): a start makes two, STARTING and
    RUNNING, and the second already says whether the run is ready."""
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, notify=notify)
    saved: list[tuple[str, bool]] = []
    original = unit.save

    def save() -> None:
        original()
        record = json.loads(unit.ctx.record_path(unit.name).read_text())
        saved.append((record["state"], record["ready"]))

    unit.save = save  # type: ignore[method-assign]

    async def scenario() -> None:
        await unit.start()
        await unit.stop()

    run(scenario)
    assert saved[:2] == [("starting", False), ("running", ready)]
    assert saved[2:] == [("stopping", ready), ("stopped", False)]


def test_a_failure_restarts_with_back_off_until_the_burst_is_spent(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=RESTARTING)
    seen = states_of(unit)

    async def scenario() -> None:
        await unit.start()
        for expected_runs in (1, 2, 3):
            await unit.wait_for(State.RUNNING)
            assert len(launcher.started) == expected_runs
            launcher.started[-1].end(3)
            await unit.wait_for(State.BACKOFF, State.FAILED)
        assert unit.state is State.FAILED

    run(scenario)
    assert seen == [State.STARTING, State.RUNNING, State.BACKOFF, State.STARTING,
                    State.RUNNING, State.BACKOFF, State.STARTING, State.RUNNING, State.FAILED]
    assert unit.record.restarts == 2
    assert "restart limit reached (2 in 60s)" in (unit.record.reason or "")


def test_a_start_that_fails_is_reported_and_counts_as_a_failure(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.failure = OSError("mount: no such device")
    unit = make_unit(tmp_path, launcher)  # policy "no": no restart

    async def scenario() -> None:
        with pytest.raises(Conflict, match="did not start: mount: no such device"):
            await unit.start()

    run(scenario)
    assert unit.state is State.FAILED and launcher.started == []


def test_a_restart_does_not_wait_for_what_teardown_set_aside_but_a_stop_does(
        tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=replace(RESTARTING, delay=0.0))

    async def scenario() -> None:
        await unit.start()
        first = launcher.started[0]
        first.removal_gate = threading.Event()
        first.end(3)
        while len(launcher.started) < 2:
            await asyncio.sleep(0.001)
        await unit.wait_for(State.RUNNING)
        assert first.torn_down and not first.removed  # the next run did not wait for it
        first.removal_gate.set()
        second = launcher.started[1]
        second.removal_gate = threading.Event()
        stopping = asyncio.get_running_loop().create_task(unit.stop())
        await asyncio.sleep(0.05)
        assert second.torn_down and unit.state is State.STOPPING  # until nothing is left
        second.removal_gate.set()
        await stopping
        assert (unit.state, first.removed, second.removed) == (State.STOPPED, True, True)

    run(scenario)


def test_the_removal_of_what_teardown_set_aside_waits_for_the_restart(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=replace(RESTARTING, delay=0.5, max_delay=0.5))

    async def scenario() -> None:
        await unit.start()
        first = launcher.started[0]
        first.end(3)
        await unit.wait_for(State.BACKOFF)
        await asyncio.sleep(0.05)
        assert first.torn_down and first.removal_began is None  # the restart comes first
        await unit.wait_for(State.RUNNING)
        while not first.removed:
            await asyncio.sleep(0.001)
        assert first.removal_began is not None and first.removal_began > launcher.started_at[1]

    run(scenario)


def test_a_stop_during_the_back_off_returns_once_the_last_run_is_removed(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=replace(RESTARTING, delay=5.0, max_delay=5.0))

    async def scenario() -> None:
        await unit.start()
        first = launcher.started[0]
        first.removal_gate = threading.Event()
        first.end(3)
        await unit.wait_for(State.BACKOFF)
        stopping = asyncio.get_running_loop().create_task(unit.stop())
        await asyncio.sleep(0.05)
        assert unit.state is State.STOPPED and not stopping.done() and not first.removed
        first.removal_gate.set()
        await stopping
        assert first.removed and len(launcher.started) == 1

    run(scenario)


def test_a_stop_waits_for_the_removal_of_every_earlier_run(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=replace(RESTARTING, delay=0.0, max_delay=0.0,
                                                           burst=5))

    async def scenario() -> None:
        await unit.start()
        first = launcher.started[0]
        first.removal_gate = threading.Event()
        first.end(3)
        while len(launcher.started) < 2:
            await asyncio.sleep(0.001)
        await unit.wait_for(State.RUNNING)
        while first.removal_began is None:  # under way, held at its gate
            await asyncio.sleep(0.001)
        launcher.started[1].end(3)  # the second run ends while the first's removal runs
        while len(launcher.started) < 3:
            await asyncio.sleep(0.001)
        await unit.wait_for(State.RUNNING)
        stopping = asyncio.get_running_loop().create_task(unit.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done() and not first.removed
        first.removal_gate.set()
        await stopping
        assert unit.state is State.STOPPED
        assert all(run.removed for run in launcher.started)

    run(scenario)


def test_a_teardown_that_must_wait_does_so_off_the_loop(tmp_path: Path) -> None:
    """One with processes left to die (or a systemd job) waits in a thread: ctrd's loop, which
    serves every other container and the API, goes on; one with nothing to wait for runs on it."""
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=replace(RESTARTING, delay=0.0))

    async def scenario() -> None:
        await unit.start()
        first = launcher.started[0]
        first.at_once = False
        first.vacate_gate = threading.Event()
        first.end(3)
        while first.vacated_in is None:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)  # the loop runs while that teardown waits
        assert not first.torn_down
        first.vacate_gate.set()
        await unit.wait_for(State.RUNNING)
        while len(launcher.started) < 2:
            await asyncio.sleep(0.001)
        assert first.vacated_in is not threading.main_thread()
        second = launcher.started[1]
        second.end(3)
        while second.vacated_in is None:
            await asyncio.sleep(0.001)
        assert second.vacated_in is threading.main_thread()

    run(scenario)


def test_stop_sends_the_stop_signal_and_is_never_restarted(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=RESTARTING,
                     stop=StopSpec(timeout=5, signal=signal.SIGQUIT))  # type: ignore[arg-type]
    launcher.ends_on = frozenset({signal.SIGQUIT})

    async def scenario() -> None:
        await unit.start()
        await unit.stop()
        await asyncio.sleep(0.05)  # longer than the restart delay

    run(scenario)
    container = launcher.started[0]
    assert container.signals == [signal.SIGQUIT]
    assert unit.state is State.STOPPED and len(launcher.started) == 1


def test_a_deaf_container_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    launcher = FakeLauncher(ends_on=frozenset({signal.SIGKILL}))
    unit = make_unit(tmp_path, launcher, stop=StopSpec(timeout=0.05))

    async def scenario() -> None:
        await unit.start()
        await unit.stop()

    run(scenario)
    assert launcher.started[0].signals == [signal.SIGTERM, signal.SIGKILL]
    assert unit.state is State.STOPPED


def test_kill_reaches_pid_1_also_while_a_stop_waits(tmp_path: Path) -> None:
    launcher = FakeLauncher(ends_on=frozenset({signal.SIGKILL}))
    unit = make_unit(tmp_path, launcher, stop=StopSpec(timeout=30))

    async def scenario() -> None:
        await unit.start()
        stopping = asyncio.get_running_loop().create_task(unit.stop())
        await unit.wait_for(State.STOPPING)
        unit.kill(signal.SIGKILL)
        await stopping

    run(scenario)
    assert launcher.started[0].signals == [signal.SIGTERM, signal.SIGKILL]
    assert unit.state is State.STOPPED


def test_an_update_changes_the_running_container_until_its_next_start(tmp_path: Path) -> None:
    """The precedence rule: a definition's limits apply at each start; ``ctrctl update`` only
    to the run it is made in, and is kept in the record while that run lasts."""
    launcher = FakeLauncher()
    defined = Resources(memory_max=64 << 20)
    unit = make_unit(tmp_path, launcher, resources=defined)
    update = Resources(memory_max=128 << 20, pids_max=10)

    async def scenario() -> None:
        with pytest.raises(Conflict, match="not running"):
            unit.update(update)
        await unit.start()
        unit.update(update)
        assert unit.view().resources == {"memory_max": 128 << 20, "pids_max": 10}
        assert unit.record.limits == {"memory_max": 128 << 20, "pids_max": 10}
        await unit.stop()
        assert unit.view().resources == {"memory_max": 64 << 20}
        await unit.start()
        assert unit.view().resources == {"memory_max": 64 << 20}

    run(scenario)
    first, second = launcher.started
    assert first.cgroup is not None and second.cgroup is not None
    assert isinstance(first.cgroup, FakeCgroup) and first.cgroup.applied == [update]
    assert isinstance(second.cgroup, FakeCgroup) and second.cgroup.applied == []
    assert unit.spec.resources == defined


def test_an_adopted_container_keeps_its_updated_limits(tmp_path: Path) -> None:
    """After a ctrd restart the record's live limits are the running container's, and the
    definition's (as it is now) apply at its next start."""
    launcher = FakeLauncher()
    launcher.adoptable = FakeRunning(7, frozenset({signal.SIGTERM}))
    record = Record(definition="web", want_running=True, limits={"cpuset_cpus": "0"})
    unit = make_unit(tmp_path, launcher, record=record, resources=Resources(pids_max=5))

    async def scenario() -> None:
        await unit.adopt()
        assert unit.state is State.RUNNING
        assert unit.view().resources == {"cpuset_cpus": "0"}
        await unit.stop()
        await unit.start()
        assert unit.view().resources == {"pids_max": 5}

    run(scenario)


def test_a_container_that_ended_while_no_ctrd_watched_is_collected(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    ended = FakeRunning(3, frozenset())
    ended.end(5)
    launcher.adoptable = ended
    unit = make_unit(tmp_path, launcher, record=Record(definition="web", want_running=True))

    async def scenario() -> None:
        await unit.adopt()
        await unit.wait_for(State.EXITED, State.FAILED)

    run(scenario)
    assert unit.record.exit_code == 5 and ended.torn_down
