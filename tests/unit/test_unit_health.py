"""Health checks and readiness in ctrd's Unit, against the dummy containers and launcher of
test_unit.py: what each result does to the run (on_failure through the back-off), when a start
with ``wait`` returns or fails, the notify socket, and the sockets passed on every start."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from supervisor.daemon.health import Result
from supervisor.daemon.readiness import INSIDE, SOCKET_NAME
from supervisor.daemon.states import State
from supervisor.daemon.unit import Unit
from supervisor.daemon.view import Conflict
from supervisor.model.spec import HealthSpec, RestartSpec
from tests.unit.test_unit import RESTARTING, FakeLauncher, make_unit, run, states_of

CHECK = ("/bin/check", "--quick")


def health(**spec: object) -> HealthSpec:
    return HealthSpec(command=CHECK, interval=0.005, timeout=1.0, retries=2,
                      **spec)  # type: ignore[arg-type]


async def until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.001)


def failing(n: int) -> list[Result]:
    return [Result(1, b"connection refused\n")] * n


def test_a_check_runs_in_the_container_and_makes_it_healthy(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, health=health())

    async def scenario() -> None:
        await unit.start()
        assert unit.view().health == "starting"
        await until(lambda: unit.view().health == "healthy")
        assert unit.observed().health == "healthy"
        await unit.stop()
        assert unit.view().health is None and unit.health is None

    run(scenario)
    assert launcher.checked[0] == (1000, CHECK)


def test_unhealthy_with_on_failure_none_keeps_running_and_logs_each_failure(
        tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.check_results = failing(3)
    unit = make_unit(tmp_path, launcher, health=health())

    async def scenario() -> None:
        await unit.start()
        await until(lambda: unit.view().health == "unhealthy")
        await until(lambda: len(launcher.checked) > 3)  # healthy again after the three
        assert unit.state is State.RUNNING and launcher.started[0].signals == []
        assert unit.view().health == "healthy"

    run(scenario)
    lines = unit.ctx.log_path("web").read_bytes().splitlines()
    assert len(lines) == 3 and all(
        line.endswith(b"health check failed (exit status 1): connection refused")
        for line in lines)


def test_on_failure_restart_goes_through_the_back_off_and_the_state_resets(
        tmp_path: Path) -> None:
    """Policy "no" would not restart a crash; ``on_failure = "restart"`` does, counting each as
    a failure of the burst, and every new run starts "starting" (docker's moby #28400)."""
    launcher = FakeLauncher()
    launcher.check_results = [Result(0), *failing(2), *failing(2), *failing(2)]
    spec = RestartSpec(policy="no", delay=0.01, max_delay=0.02, burst=2, interval=60.0)
    unit = make_unit(tmp_path, launcher, health=health(on_failure="restart"), restart=spec)
    seen = states_of(unit)

    async def scenario() -> None:
        await unit.start()
        await until(lambda: len(launcher.started) == 2)
        assert unit.view().health == "starting"
        await unit.wait_for(State.FAILED)

    run(scenario)
    assert seen == [State.STARTING, State.RUNNING, State.BACKOFF] * 2 + [
        State.STARTING, State.RUNNING, State.FAILED]
    assert all(c.signals[0] == signal.SIGTERM and c.torn_down for c in launcher.started)
    assert unit.record.restarts == 2
    assert unit.record.reason == ("unhealthy: 2 health checks failed in a row, the last with "
                                  "exit status 1; restart limit reached (2 in 60s)")


def test_on_failure_kill_kills_it_and_the_policy_decides(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.check_results = failing(2)
    unit = make_unit(tmp_path, launcher, health=health(on_failure="kill"), restart=RESTARTING)

    async def scenario() -> None:
        await unit.start()
        await until(lambda: len(launcher.started) == 2)
        await unit.wait_for(State.RUNNING)
        await unit.stop()

    run(scenario)
    assert launcher.started[0].signals == [signal.SIGKILL]
    assert unit.record.restarts == 1


def test_start_and_wait_returns_once_the_first_check_passed(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.check_results = failing(1)
    unit = make_unit(tmp_path, launcher, health=health(), notify="healthy")

    async def scenario() -> None:
        await unit.start(wait=True)
        assert unit.view().ready and unit.view().health == "healthy"
        assert len(launcher.checked) == 2 and unit.record.ready

    run(scenario)


def test_start_and_wait_fails_with_the_reason_when_not_ready_in_time(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.check_results = failing(1000)
    unit = make_unit(tmp_path, launcher, health=health(), notify="healthy",
                     ready_timeout=0.05)

    async def scenario() -> None:
        with pytest.raises(Conflict, match=r"did not become ready: not ready within 0.05s "
                                           r"\(ready_timeout\)"):
            await unit.start(wait=True)

    run(scenario)
    assert launcher.started[0].signals == [signal.SIGTERM]
    assert unit.state is State.FAILED and not unit.view().ready


def test_start_and_wait_fails_when_the_container_dies_first(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, notify="container")

    async def scenario() -> None:
        await unit.start()
        waiting = asyncio.get_running_loop().create_task(unit.start(wait=True))
        await asyncio.sleep(0.01)
        launcher.started[0].end(3)
        with pytest.raises(Conflict, match="did not become ready: exited with 3"):
            await waiting

    run(scenario)


def test_notify_container_gets_a_socket_of_its_own_and_ready_on_ready_1(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, notify="container")
    changes: list[str | None] = []
    unit._on_change = lambda u: changes.append(u.status_text)

    async def scenario() -> None:
        await unit.start()
        assert not unit.view().ready
        launched = launcher.started[0].spec
        mount = next(m for m in launched.mounts if m.target == INSIDE)
        assert ("NOTIFY_SOCKET", f"{INSIDE}/{SOCKET_NAME}") in launched.environment
        host_socket = Path(mount.source) / SOCKET_NAME
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sd:  # as sd_notify(3) sends
            sd.sendto(b"STATUS=loading the cache\n", str(host_socket))
            sd.sendto(b"READY=1\nSTATUS=serving", str(host_socket))
        await unit.start(wait=True)
        assert unit.view().ready and unit.status_text == "serving"
        await unit.stop()
        assert not host_socket.exists()
        unit.forget()  # an instance removed: nothing of its socket left on the host
        assert not host_socket.parent.exists()

    run(scenario)
    assert "loading the cache" in changes and "serving" in changes


def test_a_definition_without_notify_is_ready_once_it_runs(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher)

    async def scenario() -> None:
        await unit.start(wait=True)
        assert unit.view().ready

    run(scenario)
    assert all(m.target != INSIDE for m in launcher.started[0].spec.mounts)


def test_notify_healthy_without_any_check_ends_the_run_with_the_reason(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, notify="healthy")

    async def scenario() -> None:
        with pytest.raises(Conflict, match='notify = "healthy", but neither the definition nor '
                                           "the image has a health check"):
            await unit.start(wait=True)

    run(scenario)


def test_the_sockets_kept_for_it_are_passed_at_every_start(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit: Unit = make_unit(tmp_path, launcher, restart=RESTARTING)
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(tmp_path / "web.sock"))
    listening.listen()
    unit.ctx.sockets.give("web", [("http", listening.detach())])

    async def scenario() -> None:
        await unit.start()
        launcher.started[0].end(1)  # a crash: restarted with the same sockets
        await until(lambda: len(launcher.started) == 2)
        await unit.stop()

    run(scenario)
    first, second = (options.listen_fds for options in launcher.options)
    assert first == second and [name for name, _ in first] == ["http"]
    unit.ctx.sockets.release("web")
    with pytest.raises(OSError):
        os.fstat(first[0][1])
