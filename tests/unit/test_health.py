"""The health checker on its own: docker's counting of checks (retries in a row, start_period,
a pass resetting the count), on a fake clock, against a probe that hands out scripted results."""

from __future__ import annotations

import asyncio

import pytest

from supervisor.daemon.health import Checker, Result
from supervisor.model.spec import HealthSpec


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Seen:
    """What the checker reported: each result with the status then and whether it changed."""

    def __init__(self) -> None:
        self.reports: list[tuple[int | None, str, bool]] = []

    def __call__(self, checker: Checker, result: Result, changed: bool) -> None:
        self.reports.append((result.code, checker.status, changed))


async def never(spec: HealthSpec) -> Result | None:
    raise AssertionError("no check is run by these tests' own calls to record")


def checker(clock: Clock, seen: Seen, **spec: float | int) -> Checker:
    return Checker(HealthSpec(command=("/bin/check",), **spec),  # type: ignore[arg-type]
                   never, seen, clock=clock)


def test_retries_failures_in_a_row_make_it_unhealthy_and_a_pass_heals() -> None:
    clock, seen = Clock(), Seen()
    health = checker(clock, seen, retries=3)
    assert health.status == "starting"
    for code in (0, 1, 1, 0, 1, 1, 1, 1, 0):
        health.record(Result(code))
    assert seen.reports == [
        (0, "healthy", True), (1, "healthy", False), (1, "healthy", False),
        (0, "healthy", False),  # the pass reset the count: two more are not enough
        (1, "healthy", False), (1, "healthy", False), (1, "unhealthy", True),
        (1, "unhealthy", False), (0, "healthy", True)]
    assert health.failures == 0


def test_failures_in_the_start_period_do_not_count_until_a_check_passed() -> None:
    clock, seen = Clock(), Seen()
    health = checker(clock, seen, retries=1, start_period=10.0)
    health.record(Result(1))
    clock.now += 5
    health.record(Result(None, b"", 5.0))  # a timeout is a failure like any other
    assert (health.status, health.failures) == ("starting", 0)
    health.record(Result(0))
    clock.now += 1  # still within the start period, but it was healthy once: it counts
    health.record(Result(1))
    assert health.status == "unhealthy"


def test_after_the_start_period_the_first_failure_counts() -> None:
    clock, seen = Clock(), Seen()
    health = checker(clock, seen, retries=1, start_period=10.0)
    clock.now += 10
    health.record(Result(2, b"down"))
    assert health.status == "unhealthy" and health.last == Result(2, b"down")


@pytest.mark.parametrize(("result", "text"), [
    (Result(0), "exit status 0"), (Result(7), "exit status 7"),
    (Result(None, b"", 2.5), "timed out after 2.5s")])
def test_results_describe_themselves(result: Result, text: str) -> None:
    assert result.describe() == text


def test_checks_run_every_interval_until_stopped() -> None:
    """The loop itself: a check after each interval, each result reported; none after stop."""
    seen = Seen()
    results = [Result(1), Result(0), None]  # None: skipped (a frozen container)
    calls = 0

    async def probe(spec: HealthSpec) -> Result | None:
        nonlocal calls
        calls += 1
        return results.pop(0) if results else Result(0)

    async def scenario() -> None:
        health = Checker(HealthSpec(command=("/bin/check",), interval=0.001), probe, seen)
        health.start()
        while calls < 5:
            await asyncio.sleep(0.001)
        health.stop()
        stopped_at = calls
        await asyncio.sleep(0.02)
        assert calls == stopped_at

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert seen.reports[:3] == [(1, "starting", False), (0, "healthy", True),
                                (0, "healthy", False)]
