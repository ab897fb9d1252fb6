"""The PNG of the containers-versus-VMs part: four panels, each environment relative to the
host or in absolute units, from the ``versus`` data of bench/versus.py (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.common import median

COLOURS = {"host": "C7", "ctr": "C0", "lxc": "C2", "vm": "C3"}


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib  # type: ignore[import-not-found,unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found,unused-ignore]

    names = list(COLOURS)
    labels = {"host": "host", "ctr": "ctr", "lxc": "LXC", "vm": f"VM ({data['accel'].upper()})"}
    figure, ((bench_axes, web_axes), (start_axes, memory_axes)) = plt.subplots(
        2, 2, figsize=(11, 7.5), dpi=100)

    tests = list(data["sysbench"])
    width = 0.8 / (len(names) - 1)
    for i, name in enumerate(names[1:]):
        ratios = [median(data["sysbench"][test][name]) / median(data["sysbench"][test]["host"])
                  for test in tests]
        bench_axes.bar([t + i * width for t in range(len(tests))], ratios, width,
                       color=COLOURS[name], label=labels[name])
    bench_axes.axhline(1, color="k", linewidth=0.8)
    bench_axes.set_xticks([t + width for t in range(len(tests))], tests, fontsize="small")
    bench_axes.set_ylabel("throughput / host's (median)")
    bench_axes.set_title("sysbench, 1 CPU each")
    bench_axes.set_ylim(0, 1.3)
    bench_axes.legend(fontsize="small", loc="upper center", ncol=3)

    def bars(axes: Any, values: list[float], title: str, ylabel: str, log: bool) -> None:
        axes.bar([labels[name] for name in names], values,
                 color=[COLOURS[name] for name in names])
        for x, value in enumerate(values):
            axes.annotate(f"{value:.3g}", (x, value), ha="center", va="bottom",
                          fontsize="small")
        if log:
            axes.set_yscale("log")
        axes.set_title(title)
        axes.set_ylabel(ylabel)

    bars(web_axes, [median([run["requests_s"] for run in data["web"][name]]) for name in names],
         "busybox httpd under wrk (16 connections)", "requests/s (median)", False)
    bars(start_axes, [median(data["start"][name]["start_s"]) * 1000 for name in names],
         f"start-up, {data['n']} in sequence", "ms to the first process (median, log)", True)
    bars(memory_axes, [max(data["start"][name]["pss_kib"], 1) / 1024 for name in names],
         "memory per idle instance", "MiB PSS (log)", True)
    for axes in (bench_axes, web_axes, start_axes, memory_axes):
        axes.grid(alpha=0.3, axis="y")
    figure.suptitle("host, ctr, LXC and a QEMU VM on the same CPU (bench/versus.py)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
