"""The pulls ctrd makes before a container starts, and what the metrics read of them.

A pull takes seconds to minutes and blocks on the network, so it runs in threads of its own
(``supervisor.images.pull`` is synchronous), never on the event loop and never in the executor
that tears containers down: other containers start, stop and restart meanwhile. Its progress is
kept for ``ctrctl status`` and ``list``, its counters for ``ctr_image_pull*``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from pathlib import Path
from typing import Any

from supervisor.daemon.view import ImageStats
from supervisor.images import locate, pull
from supervisor.images.progress import Progress
from supervisor.images.stats import PullStats
from supervisor.images.store import Store
from supervisor.model.spec import ContainerSpec

PULLS = 4  # at once; each fetches up to PullOptions.workers layers concurrently


class PullProgress:
    """One pull as a status shows it, fed by the pull's threads, read on the event loop."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self._layers: dict[str, Progress] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Progress) -> None:
        with self._lock:
            self._layers[event.layer] = event

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            layers = list(self._layers.values())
        return {"image": self.ref, "layers": len(layers),
                "layers_done": sum(1 for p in layers if p.state in ("done", "exists")),
                "bytes": sum(p.done for p in layers), "total": sum(p.total for p in layers)}


class Images:
    """ctrd's side of the image store: which start needs a pull, the pulls, their counters."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.stats = PullStats()
        self._pulls = concurrent.futures.ThreadPoolExecutor(PULLS, thread_name_prefix="pull")

    def to_pull(self, spec: ContainerSpec, by_hand: bool) -> str | None:
        """The reference to pull before starting ``spec`` (its pull policy decides)."""
        return locate.to_pull(locate.locate(spec.image, self.data_dir), spec.pull, by_hand)

    async def pull(self, ref: str, progress: PullProgress) -> None:
        """Pull ``ref`` into the store; raises with the registry's reason if it cannot."""
        job = functools.partial(pull.pull, ref, Store(self.data_dir), progress=progress,
                                stats=self.stats)
        await asyncio.get_running_loop().run_in_executor(self._pulls, job)

    def counts(self) -> ImageStats:
        """For a scrape, from the metrics' thread: the counters and the store's images."""
        return ImageStats(len(Store(self.data_dir).records()), self.stats.counts())

    def close(self) -> None:
        self._pulls.shutdown(wait=False, cancel_futures=True)
