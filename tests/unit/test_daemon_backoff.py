"""The restart policy and back-off schedule, on a fake clock (no containers, no sleeping)."""

from __future__ import annotations

import pytest

from supervisor.daemon.backoff import Backoff
from supervisor.daemon.states import ALLOWED, State, TransitionError, check_transition
from supervisor.model.spec import RestartSpec

SPEC = RestartSpec(policy="on-failure", delay=0.1, max_delay=1.0, burst=5, interval=60.0,
                   reset_after=10.0)


def test_delay_doubles_up_to_max_delay() -> None:
    backoff = Backoff(SPEC)
    delays = [backoff.on_end(now=t, ran_for=0.5, failed=False) for t in range(8)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]


def test_a_long_run_resets_the_delay() -> None:
    backoff = Backoff(SPEC)
    for t in range(3):
        backoff.on_end(now=t, ran_for=1, failed=False)
    assert backoff.on_end(now=100, ran_for=10.0, failed=False) == 0.1


def test_more_than_burst_failures_within_interval_spend_the_budget() -> None:
    backoff = Backoff(SPEC)
    results = [backoff.on_end(now=t, ran_for=0, failed=True) for t in range(6)]
    assert all(d is not None for d in results[:5])
    assert results[5] is None  # the sixth failure within 60 s: FAILED


def test_failures_outside_the_interval_do_not_count() -> None:
    backoff = Backoff(SPEC)
    for t in (0, 20, 40, 61, 81, 101, 121):  # never more than 5 within any 60 s
        assert backoff.on_end(now=t, ran_for=0, failed=True) is not None


def test_reset_by_hand_gives_a_fresh_budget() -> None:
    backoff = Backoff(SPEC)
    for t in range(6):
        backoff.on_end(now=t, ran_for=0, failed=True)
    backoff.reset()
    assert backoff.on_end(now=7, ran_for=0, failed=True) == 0.1


@pytest.mark.parametrize(("policy", "failed", "restart"), [
    ("no", True, False), ("no", False, False),
    ("on-failure", True, True), ("on-failure", False, False),
    ("always", True, True), ("always", False, True),
])
def test_policies(policy: str, failed: bool, restart: bool) -> None:
    backoff = Backoff(RestartSpec(policy=policy))  # type: ignore[arg-type]
    assert backoff.wants_restart(failed) is restart


def test_every_state_has_transitions_and_impossible_ones_are_refused() -> None:
    assert set(ALLOWED) == set(State)
    check_transition(State.STOPPED, State.STARTING)
    check_transition(State.RUNNING, State.BACKOFF)
    with pytest.raises(TransitionError):
        check_transition(State.STOPPED, State.RUNNING)
    with pytest.raises(TransitionError):
        check_transition(State.STOPPING, State.RUNNING)
