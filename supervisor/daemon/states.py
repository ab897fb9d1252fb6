"""The states of a supervised container and the transitions between them, in one place.

Named as supervisord and systemd name them. Every state change in ctrd goes through
``check_transition`` so an impossible change is a bug found at once, not a silent odd state.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    STOPPED = "stopped"  # not running, and not meant to (never started, or stopped on request)
    STARTING = "starting"  # set-up under way
    RUNNING = "running"  # PID 1 runs the command
    BACKOFF = "backoff"  # exited or failed to start; a restart is scheduled
    STOPPING = "stopping"  # SIGTERM sent, waiting for the exit (then SIGKILL)
    EXITED = "exited"  # ended on its own and the policy does not restart it
    FAILED = "failed"  # the restart budget is spent (or a start failed with no restart)


ALLOWED: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING}),
    State.STARTING: frozenset({State.RUNNING, State.BACKOFF, State.FAILED, State.STOPPED}),
    State.RUNNING: frozenset({State.STOPPING, State.BACKOFF, State.EXITED, State.FAILED}),
    State.BACKOFF: frozenset({State.STARTING, State.STOPPED, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED}),
    State.EXITED: frozenset({State.STARTING, State.STOPPED}),
    State.FAILED: frozenset({State.STARTING, State.STOPPED}),
}


# What a unit may begin in when ctrd starts, which is no transition: STOPPED for a new one; for a
# container a previous ctrd started, RUNNING once it is adopted, or the state its record rested
# in when nothing of it is left (so one stopped, exited or failed stays so, with its reason).
AT_REST = frozenset({State.STOPPED, State.EXITED, State.FAILED})
INITIAL = AT_REST | {State.RUNNING}


class TransitionError(RuntimeError):
    pass


def check_transition(current: State, new: State) -> None:
    if new not in ALLOWED[current]:
        raise TransitionError(f"no transition from {current.name} to {new.name}")


def check_initial(state: State) -> None:
    if state not in INITIAL:
        raise TransitionError(f"a unit cannot begin in {state.name}")
