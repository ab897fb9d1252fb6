"""Counters of pulls, for ctrd's metrics (``ctr_image_pulls_total``, ``_pull_bytes_total``,
``_pull_duration_seconds``): one object per process, updated by every pull made with it (from
worker threads) and read at scrape time, as the other collectors read cgroup files
(``ctr_images`` is ``len(Store.records())``). Durations are counted into a histogram's buckets
as they come, so a long-running ctrd keeps a fixed size whatever it pulls."""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass, field

# Seconds: a small image from a registry nearby takes well under one, a large one minutes
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, math.inf)


@dataclass(frozen=True)
class PullCounts:
    """A consistent copy of the counters; ``buckets`` cumulative, as Prometheus takes them."""

    succeeded: int
    failed: int
    bytes: int
    buckets: tuple[tuple[float, int], ...]  # (upper bound, pulls that took at most that)
    seconds: float  # all pulls together


@dataclass
class PullStats:
    succeeded: int = 0
    failed: int = 0
    bytes: int = 0  # downloaded (compressed) bytes, of failed pulls too
    seconds: float = 0.0
    _counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, ok: bool, downloaded: int, seconds: float) -> None:
        with self._lock:
            if ok:
                self.succeeded += 1
            else:
                self.failed += 1
            self.bytes += downloaded
            self.seconds += seconds
            self._counts[bisect.bisect_left(BUCKETS, seconds)] += 1

    def counts(self) -> PullCounts:
        with self._lock:
            total, buckets = 0, []
            for bound, count in zip(BUCKETS, self._counts, strict=True):
                total += count
                buckets.append((bound, total))
            return PullCounts(self.succeeded, self.failed, self.bytes, tuple(buckets),
                              self.seconds)
