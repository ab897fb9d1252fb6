"""Which end of a container ends its ctr@ unit, and how (the e2e tests run it under systemd)."""

from __future__ import annotations

import signal
from types import SimpleNamespace
from typing import Any, cast

import pytest

from supervisor.daemon.services import ending_signal
from supervisor.daemon.states import State
from supervisor.daemon.unit import Record, Unit

KILL, TERM = signal.SIGKILL, signal.SIGTERM


def unit(state: State, instance: bool = False, **record: Any) -> Unit:
    return cast(Unit, SimpleNamespace(
        state=state, record=Record(definition="web", **record),
        service=None if instance else "ctr@web.service"))


@pytest.mark.parametrize(("state", "record", "expected"), [
    (State.RUNNING, {}, None),
    (State.BACKOFF, {"exit_code": 1}, None),  # restarting: the unit stays active
    (State.STARTING, {}, None),
    (State.FAILED, {"exit_code": 1}, KILL),  # restart budget spent
    (State.EXITED, {"exit_code": 3}, KILL),  # an error exit the policy does not restart
    (State.EXITED, {"exit_code": 0, "oom_killed": True}, KILL),
    (State.EXITED, {"exit_code": 0}, TERM),
    (State.STOPPED, {"want_running": False}, TERM),  # ctrctl stop, or the unit's ExecStop
    (State.STOPPED, {"want_running": True}, None),  # to start again with its namespace owner
])
def test_ending_signal(state: State, record: dict[str, Any], expected: int | None) -> None:
    assert ending_signal(unit(state, **record)) == expected


def test_instances_have_no_unit_to_end() -> None:
    assert ending_signal(unit(State.FAILED, instance=True)) is None
