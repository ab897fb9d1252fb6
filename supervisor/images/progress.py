"""What a pull or a load reports while it works, layer by layer, for a progress display."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One layer's state, reported as it changes (from the threads doing the work)."""

    layer: str  # its digest
    total: int  # bytes, as its descriptor says
    done: int
    state: str  # "waiting", "downloading", "resuming", "exists", "done"


ProgressCallback = Callable[[Progress], None]


def ignore(_: Progress) -> None:
    """The callback when nobody watches."""
