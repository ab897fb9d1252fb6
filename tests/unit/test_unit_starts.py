"""How long starts take, as the daemon counts them for ``ctr_container_start_duration_seconds``:
each start from STARTING to RUNNING, not a failed one, not an adoption; and the container's
[metrics] in its public view while it runs (for service discovery)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from supervisor.daemon.states import State
from supervisor.daemon.unit import Record
from supervisor.daemon.view import Conflict
from supervisor.model.spec import MetricsSpec
from tests.unit.test_unit import RESTARTING, FakeLauncher, FakeRunning, make_unit, run


def count(histogram_buckets: tuple[tuple[float, int], ...]) -> int:
    return histogram_buckets[-1][1]


def test_each_start_is_counted_once_it_runs(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, restart=RESTARTING)

    async def scenario() -> None:
        await unit.start()
        launcher.started[0].end(3)  # a failure: restarted through the back-off
        await unit.wait_for(State.BACKOFF)
        await unit.wait_for(State.RUNNING)

    run(scenario)
    starts = unit.ctx.starts.histogram()
    assert count(starts.buckets) == 2
    assert 0 < starts.sum < 5  # seconds of the two starts (a dummy container: next to none)


def test_a_failed_start_is_no_start_duration(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.failure = OSError("no such image")
    unit = make_unit(tmp_path, launcher)

    async def scenario() -> None:
        with pytest.raises(Conflict, match="no such image"):
            await unit.start()
        assert unit.state is State.FAILED

    run(scenario)
    assert count(unit.ctx.starts.histogram().buckets) == 0


def test_an_adoption_is_no_start(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    launcher.adoptable = FakeRunning(7, frozenset({signal.SIGTERM}))
    unit = make_unit(tmp_path, launcher, record=Record(definition="web", want_running=True,
                                                       state="running"))

    async def scenario() -> None:
        await unit.adopt()
        assert unit.state is State.RUNNING

    run(scenario)
    assert count(unit.ctx.starts.histogram().buckets) == 0


def test_the_exporter_of_a_running_container_is_in_its_view(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    unit = make_unit(tmp_path, launcher, metrics=MetricsSpec(port=9100, path="/stats"))
    assert unit.observed().metrics is None  # not running: nothing to scrape

    async def scenario() -> None:
        await unit.start()
        assert unit.observed().metrics == MetricsSpec(port=9100, path="/stats")

    run(scenario)
