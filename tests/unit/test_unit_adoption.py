"""What a unit is after a ctrd restart, what an administrator's kill means, and published ports
held before a start, against the dummy containers and launcher of test_unit.py."""

from __future__ import annotations

import json
import logging
import signal
import socket
from dataclasses import fields
from pathlib import Path

import pytest

from supervisor.daemon.states import State
from supervisor.daemon.unit import Record, Unit
from supervisor.daemon.view import Conflict
from supervisor.model.spec import ContainerSpec, NetworkSpec, PortMapping
from tests.unit.test_unit import RESTARTING, FakeLauncher, FakeRunning, make_unit, run, states_of


def reloaded(unit: Unit, launcher: FakeLauncher) -> Unit:
    """The unit a new ctrd makes of ``unit``'s saved record (as Supervisor.recover reads it)."""
    data = json.loads(unit.ctx.record_path(unit.name).read_text())
    record = Record(**{f.name: data[f.name] for f in fields(Record) if f.name in data})
    again = make_unit(unit.ctx.dirs.state.parent, launcher, record=record, restart=RESTARTING)
    return again


def test_an_adopted_container_is_logged_as_adopted_not_as_started(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    launcher = FakeLauncher()
    launcher.adoptable = FakeRunning(7, frozenset({signal.SIGTERM}))
    unit = make_unit(tmp_path, launcher, record=Record(definition="web", want_running=True,
                                                       state="running"))
    seen = states_of(unit)
    caplog.set_level(logging.INFO, logger="supervisor.daemon.unit")

    async def scenario() -> None:
        await unit.adopt()

    run(scenario)
    assert unit.state is State.RUNNING and seen == []  # no STOPPED -> STARTING -> RUNNING
    assert "web: adopted running, PID 1007" in caplog.messages
    assert not any("->" in message for message in caplog.messages)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_a_container_the_administrator_ended_stays_down_across_a_ctrd_restart(
        tmp_path: Path, how: str) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=RESTARTING)

    async def scenario() -> None:
        await unit.start()
        if how == "stop":
            await unit.stop()
        else:
            unit.kill(signal.SIGKILL)
            await unit.wait_for(State.EXITED, State.BACKOFF)

    run(scenario)
    expected = State.STOPPED if how == "stop" else State.EXITED
    assert unit.state is expected and len(launcher.started) == 1  # no restart by the policy
    again = reloaded(unit, launcher)

    async def restart() -> None:
        await again.adopt()  # nothing is left of the container

    run(restart)
    assert again.state is expected and not again.record.want_running
    if how == "kill":
        assert again.view().reason == "exited with 137" and again.view().exit_code == 137


def test_a_failed_container_stays_failed_with_its_reason(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    record = Record(definition="web", want_running=True, state="failed",
                    reason="exited with 3; restart limit reached (2 in 60s)")
    unit = make_unit(tmp_path, launcher, record=record)
    seen = states_of(unit)

    async def scenario() -> None:
        await unit.adopt()

    run(scenario)
    assert unit.state is State.FAILED and seen == [] and launcher.started == []
    assert "restart limit reached" in (unit.view().reason or "")


@pytest.mark.parametrize("recorded", ["starting", "running", "backoff", "stopping"])
def test_a_unit_caught_on_its_way_begins_stopped(tmp_path: Path, recorded: str) -> None:
    """Without its container, one that was starting, running or backing off begins STOPPED,
    which the supervisor starts again if it is meant to run."""
    unit = make_unit(tmp_path, FakeLauncher(),
                     record=Record(definition="web", want_running=True, state=recorded))

    async def scenario() -> None:
        await unit.adopt()

    run(scenario)
    assert unit.state is State.STOPPED


def test_other_signals_leave_the_policy_in_charge(tmp_path: Path) -> None:
    launcher = FakeLauncher(ends_on=frozenset({signal.SIGUSR1, signal.SIGTERM}))
    unit = make_unit(tmp_path, launcher, restart=RESTARTING)

    async def scenario() -> None:
        await unit.start()
        unit.kill(signal.SIGUSR1)  # fatal to this container, but not a stop asked for
        await unit.wait_for(State.BACKOFF)
        await unit.wait_for(State.RUNNING)
        unit.kill(signal.SIGTERM)  # its stop signal: a stop
        await unit.wait_for(State.EXITED)

    run(scenario)
    assert len(launcher.started) == 2 and not unit.record.want_running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_port_another_container_publishes_fails_the_start_before_it_launches(
        tmp_path: Path) -> None:
    launcher = FakeLauncher()
    port = free_port()
    network = NetworkSpec(ports=(PortMapping(port, 80, "tcp", "127.0.0.1"),))
    first = make_unit(tmp_path, launcher, network=network)
    second = Unit(ContainerSpec(name="api", image="busybox", network=network), first.ctx,
                  Record(definition="api"))

    async def scenario() -> None:
        await first.start()
        with pytest.raises(Conflict, match=f"did not start: cannot publish host port "
                           f"127.0.0.1:{port}/tcp: container web publishes it"):
            await second.start()
        assert len(launcher.started) == 1  # refused before anything was made
        await first.stop()
        await second.start()  # the port is free again at once

    run(scenario)
    assert second.state is State.RUNNING and len(launcher.started) == 2
    assert second.view().reason == ""


def test_a_port_another_program_holds_fails_the_start(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        unit = make_unit(tmp_path, launcher, network=NetworkSpec(
            ports=(PortMapping(port, 80, "tcp", "127.0.0.1"),)))

        async def scenario() -> None:
            with pytest.raises(Conflict, match="the port is in use by another program"):
                await unit.start()

        run(scenario)
    assert unit.state is State.FAILED and launcher.started == []
    assert f"127.0.0.1:{port}/tcp" in (unit.view().reason or "")


def test_an_adopted_container_whose_port_was_taken_meanwhile_is_ended_with_why(
        tmp_path: Path) -> None:
    launcher = FakeLauncher()
    adopted = FakeRunning(7, frozenset({signal.SIGTERM}))
    launcher.adoptable = adopted
    with socket.socket() as other:  # took the port while no ctrd held it
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        unit = make_unit(tmp_path, launcher, record=Record(definition="web", want_running=True,
                                                           state="running"),
                         network=NetworkSpec(ports=(PortMapping(port, 80, "tcp", "127.0.0.1"),)))

        async def scenario() -> None:
            await unit.adopt()
            await unit.wait_for(State.FAILED, State.EXITED)

        run(scenario)
    assert adopted.signals == [signal.SIGTERM] and adopted.torn_down
    assert f"cannot publish host port 127.0.0.1:{port}/tcp" in (unit.view().reason or "")
