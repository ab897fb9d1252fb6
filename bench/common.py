"""What every benchmark part shares: paths, statistics, timing, and tables with their targets.

Tables are Markdown, so the terminal output of ``make bench`` pastes into docs/benchmarks.md as is.
A target is printed beside its result and never fails the run: benchmarks are not tests.
"""

from __future__ import annotations

import math
import os
import secrets
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
CTRCTL = str(VENV_BIN / "ctrctl")  # the Python command
# What `make install` puts at PREFIX/bin/ctrctl: a plain run through ctrd in C, else CTRCTL
CTRCTL_FRONT = str(REPO / "supervisor" / "runtime" / "libexec" / "ctrctl")
CTRD = str(VENV_BIN / "ctrd")
DATA_DIR = Path(os.environ.get("CTR_DATA_DIR", "/var/lib/ctr"))
IMAGE = DATA_DIR / "images" / "busybox"  # shared read-only by every runtime measured


def run_id() -> str:
    """A short tag for this run's names (containers, veths, bridge), unique among concurrent runs:
    cgroup and interface names are host-wide, and colleagues' tests use the same host."""
    return "cb" + secrets.token_hex(2)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile (the largest sample for fewer than 20)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def timed(command: Sequence[str]) -> float:
    """Wall time of one command to its exit, in seconds; its output is discarded."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - start


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "**missed**"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; numbers right-aligned by the renderer, text kept as given."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class Section:
    """One part's results: Markdown for people, ``data`` for results.json and the plot."""

    title: str
    text: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, *paragraphs: str) -> None:
        self.text.extend(paragraphs)

    def markdown(self) -> str:
        return "\n\n".join([f"## {self.title}", *self.text])
