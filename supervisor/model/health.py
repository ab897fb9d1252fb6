"""Health checks and readiness: the check's command in docker's forms, its timings, and what
follows a failure; one parser each, for a definition's ``[health]`` and an image's Healthcheck
alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from supervisor.model import command as commands
from supervisor.model.errors import Invalid
from supervisor.model.spec import HealthAction, HealthSpec, NotifyMode
from supervisor.model.units import duration
from supervisor.model.values import integer, one_of

HEALTH_ACTIONS: tuple[HealthAction, ...] = ("none", "kill", "restart")
HealthStatus = Literal["starting", "healthy", "unhealthy"]  # docker's State.Health.Status
HEALTH_STATUSES: tuple[HealthStatus, ...] = ("starting", "healthy", "unhealthy")
NOTIFY_MODES: tuple[NotifyMode, ...] = ("none", "container", "healthy")
SHELL = ("/bin/sh", "-c")  # what runs docker's CMD-SHELL and a command given as a string
MIN_INTERVAL = 0.001  # docker refuses less than a millisecond between checks, and so do we


def health_command(value: Any) -> tuple[str, ...]:
    """The check's argv: an array run as it is, a string run by ``/bin/sh -c``, or docker's
    forms (``["CMD", argv...]``, ``["CMD-SHELL", "cmd"]``, ``["NONE"]``: no check, the empty
    argv)."""
    if isinstance(value, str):
        return commands.command([*SHELL, value])
    argv = commands.command(value)
    form, rest = argv[0], list(argv[1:])
    if form == "NONE":
        if rest:
            raise Invalid('["NONE"] takes nothing after it')
        return ()
    if form == "CMD-SHELL":
        if len(rest) != 1:
            raise Invalid('["CMD-SHELL", "..."] takes one string, run by /bin/sh -c')
        return commands.command([*SHELL, rest[0]])
    if form == "CMD":
        if not rest:
            raise Invalid('["CMD", ...] needs the program after it')
        return commands.command(rest)
    return argv


def interval(value: Any) -> float:
    """Between checks, and from the start to the first: at least a millisecond."""
    seconds = duration(value)
    if seconds < MIN_INTERVAL:
        raise Invalid(f"must be at least 1ms, got {value!r}")
    return seconds


retries = integer(1, 1000)
on_failure = one_of(*HEALTH_ACTIONS)
notify_mode = one_of(*NOTIFY_MODES)


def from_image(test: Sequence[str], interval_s: float | None = None,
               timeout_s: float | None = None, start_period_s: float | None = None,
               retries_n: int | None = None) -> HealthSpec | None:
    """An image's Healthcheck (``Test`` and the durations in seconds; None or 0 is docker's
    "inherit the default"); None when it says ``NONE``."""
    command = health_command(list(test))
    if not command:
        return None
    defaults = HealthSpec(command=command)
    return HealthSpec(
        command=command,
        interval=interval(interval_s) if interval_s else defaults.interval,
        timeout=interval(timeout_s) if timeout_s else defaults.timeout,
        start_period=duration(start_period_s) if start_period_s else defaults.start_period,
        retries=retries(retries_n) if retries_n else defaults.retries,
    )
