"""When to restart a container that ended, and after how long: pure logic, tested on a fake clock.

``delay`` doubles with every quick end up to ``max_delay``; a run of at least ``reset_after``
brings it back to ``delay``. More than ``burst`` failures within ``interval`` spend the budget:
the container goes FAILED and stays so until started by hand (as systemd's StartLimitBurst).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from supervisor.model.spec import RestartSpec


@dataclass
class Backoff:
    spec: RestartSpec
    failures: deque[float] = field(default_factory=deque)  # when recent failures happened
    next_delay: float | None = None

    def wants_restart(self, failed: bool) -> bool:
        """Whether the policy restarts a container whose run ended (failed: non-zero or killed)."""
        return self.spec.policy == "always" or (self.spec.policy == "on-failure" and failed)

    def on_end(self, now: float, ran_for: float, failed: bool) -> float | None:
        """Record a run that ended (or a start that failed, ``ran_for`` 0); the delay before the
        next start, or None when more than ``burst`` failures fell within ``interval``."""
        if ran_for >= self.spec.reset_after:
            self.next_delay = None
        if failed:
            self.failures.append(now)
            while self.failures and now - self.failures[0] > self.spec.interval:
                self.failures.popleft()
            if len(self.failures) > self.spec.burst:
                return None
        delay = self.spec.delay if self.next_delay is None else self.next_delay
        self.next_delay = min(max(delay * 2, self.spec.delay), self.spec.max_delay)
        return min(delay, self.spec.max_delay)

    def reset(self) -> None:
        """A start by hand: a fresh budget and the shortest delay."""
        self.failures.clear()
        self.next_delay = None
