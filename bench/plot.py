"""The PNG of start latency against the number of containers running (matplotlib, headless)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any


def ensure_matplotlib() -> None:
    """Install matplotlib into this venv on first use: only the benchmark needs it."""
    if importlib.util.find_spec("matplotlib") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)


def start_latency_plot(curve: dict[str, Any], path: Path) -> None:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    n, seconds = zip(*curve["starts"], strict=True)
    axes.scatter(n, [s * 1000 for s in seconds], s=6, alpha=0.45,
                 label="each start on the way up (N already running)")
    pn, pmed, p95 = zip(*curve["probes"], strict=True)
    axes.plot(pn, [s * 1000 for s in pmed], "o-", color="C1", label="next start: median")
    axes.plot(pn, [s * 1000 for s in p95], "v--", color="C1", alpha=0.6, label="next start: p95")
    axes.axhline(1.2 * pmed[0] * 1000, color="C3", linestyle=":",
                 label="target: 1.2 x median at N = 1")
    axes.set_xlabel("containers running (N)")
    axes.set_ylabel("start latency through ctrd's API (ms)")
    axes.set_title("ctrd: start of a busybox container with veth and limits, against N")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
