"""Counters of pulls, for ctrd's metrics (``ctr_image_pulls_total``, ``_pull_bytes_total``,
``_pull_duration_seconds``): one object per process, updated by every pull made with it and
read at scrape time, as the other collectors read cgroup files (``ctr_images`` is
``len(Store.records())``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class PullStats:
    succeeded: int = 0
    failed: int = 0
    bytes: int = 0  # downloaded (compressed) bytes, of failed pulls too
    durations: list[float] = field(default_factory=list)  # seconds, one per pull, in order
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, ok: bool, downloaded: int, seconds: float) -> None:
        with self._lock:
            if ok:
                self.succeeded += 1
            else:
                self.failed += 1
            self.bytes += downloaded
            self.durations.append(seconds)
