"""How long starts take: seconds from STARTING to RUNNING (fetching the image included), counted
into a histogram's buckets as they come (``ctr_container_start_duration_seconds``), so a
long-running ctrd keeps a fixed size whatever it starts. Starts that fail, and adoptions after a
ctrd restart, are not starts that took time: they are left out."""

from __future__ import annotations

import bisect
import math
import threading

from supervisor.daemon.view import Histogram

# Seconds: a container from a local image starts in tens of milliseconds, one whose image is
# pulled first in seconds to minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
           300.0, math.inf)


class StartDurations:
    """Observed on the event loop, read by the metrics' thread."""

    def __init__(self) -> None:
        self._counts = [0] * len(BUCKETS)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self._sum += seconds

    def histogram(self) -> Histogram:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip(BUCKETS, counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        return Histogram(tuple(buckets), total)
