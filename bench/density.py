"""Part 2: density. N busybox ``sleep`` containers with veth under one ctrd, started one after
another as an administrator's script would, then all removed with one ``DELETE /v1/containers``.

Every start is timed (request to RUNNING) against the number already running, for the plot. At
checkpoints the benchmark also measures: the start latency of "the next one" (probe containers
started and deleted again), ctrd's RSS and PSS, the PSS of the ctr-shim processes (one per
container, ctr's other per-container cost), the host's MemAvailable, and the time of a whole
``GET /metrics``. Each N gets a fresh ctrd, so its memory starts from the same baseline.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Sequence
from typing import Any

from bench import host
from bench.common import IMAGE, Section, median, ms, p95, table, verdict
from bench.daemon import Ctrd

DEFINITION = f"""\
[container]
image = "{IMAGE}"
command = ["/bin/sleep", "1000000"]
[resources]
memory_max = "64M"
cpu_quota = "50%"
pids_max = 64
[restart]
stop_signal = "SIGKILL"   # sleep as PID 1 ignores SIGTERM: this times the teardown, not a timeout
"""
PROBES = 7  # starts of "the next one" at each checkpoint
# After a probe's removal the kernel dismantles its network namespace in a work queue, holding
# the rtnl lock a while: a start made at once would measure that, not N.
SETTLE = 0.3
EDGE = 20  # the first and the last starts of the sequence compared
SCRAPES = 5
RSS_BASE_MIB, RSS_PER_CONTAINER_KIB = 64, 64  # the targets
SCRAPE_MS_PER_CONTAINER = 0.3


def mem_available_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def scrape(ctrd: Ctrd) -> float | None:
    """Median seconds of a whole GET /metrics over HTTP; None when ctrd serves no metrics."""
    times = []
    for _ in range(SCRAPES):
        begin = time.perf_counter()
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{ctrd.metrics_port}/metrics", timeout=60) as answer:
                answer.read()
        except OSError:
            return None
        times.append(time.perf_counter() - begin)
    return median(times)


def checkpoint(ctrd: Ctrd, n: int, tag: str) -> dict[str, Any]:
    probes = []
    for i in range(PROBES):
        name = f"{tag}p{i}"
        begin = time.perf_counter()
        ctrd.launch("sleeper", name)
        probes.append(time.perf_counter() - begin)
        ctrd.remove(name)
        time.sleep(SETTLE)
    shims = ctrd.shims()
    memory = host.memory_kib(ctrd.pid)
    return {
        "n": n,
        "probe_s": probes,
        "ctrd_rss_kib": memory["Rss"],
        "ctrd_pss_kib": memory["Pss"],
        "shims": len(shims),
        "shims_pss_kib": sum(host.memory_kib(pid)["Pss"] for pid in shims),
        "mem_available_kib": mem_available_kib(),
        "scrape_s": scrape(ctrd),
    }


def one_density(prefix: str, pool: str, n_max: int, every: int) -> dict[str, Any]:
    """Start ``n_max`` containers under a fresh ctrd, measuring every ``every``; remove them."""
    tag = f"{prefix}{n_max}"
    starts: list[tuple[int, float]] = []
    points = []
    with Ctrd(prefix, f"{prefix}br{n_max}", pool, {"sleeper": DEFINITION}) as ctrd:
        began = time.perf_counter()
        for n in range(n_max):
            begin = time.perf_counter()
            ctrd.launch("sleeper", f"{tag}c{n}")
            starts.append((n, time.perf_counter() - begin))
            if n + 1 == 1 or (n + 1) % every == 0 or n + 1 == n_max:
                paused = time.perf_counter()
                points.append(checkpoint(ctrd, n + 1, tag))
                began += time.perf_counter() - paused  # checkpoints are not start time
        total_start = time.perf_counter() - began
        running = sum(1 for view in ctrd.call("GET", "/v1/containers")
                      if view["state"] == "running")
        begin = time.perf_counter()
        ctrd.remove_all()
        stop_all = time.perf_counter() - begin
        left = host.leftovers(prefix)
    return {"n": n_max, "starts": starts, "points": points, "total_start_s": total_start,
            "running": running, "stop_all_s": stop_all, "left_after_stop": left}


def measure(prefix: str, pool: str, sizes: Sequence[int]) -> Section:
    section = Section("Density: N containers with veth under one ctrd")
    runs = [one_density(prefix, pool, n, every=max(n // 5, 1)) for n in sizes]
    report(section, runs)
    return section


def report(section: Section, runs: list[dict[str, Any]]) -> None:
    rows, targets = [], []
    for run in runs:
        one, full = run["points"][0], run["points"][-1]
        n = run["n"]
        at_1, at_n = median(one["probe_s"]), median(full["probe_s"])
        # per container from N = 1 to N (the first start also loads code and makes the bridge)
        rss_delta = (full["ctrd_rss_kib"] - one["ctrd_rss_kib"]) / (n - 1)
        host_delta = (one["mem_available_kib"] - full["mem_available_kib"]) / (n - 1)
        scrape_s = full["scrape_s"]
        seconds = [elapsed for _, elapsed in run["starts"]]
        early, late = median(seconds[:EDGE]), median(seconds[-EDGE:])
        rows.append([
            n, f"{run['total_start_s']:.1f}", ms(early), ms(late), ms(at_1), ms(at_n),
            f"{at_n / at_1:.2f}", f"{full['ctrd_rss_kib'] / 1024:.1f}", f"{rss_delta:.0f}",
            f"{full['shims_pss_kib'] / max(full['shims'], 1):.0f}", f"{host_delta:.0f}",
            "not served" if scrape_s is None else ms(scrape_s), f"{run['stop_all_s']:.1f}"])
        rss_limit = RSS_BASE_MIB * 1024 + RSS_PER_CONTAINER_KIB * n
        targets += [
            [f"N={n}: next start <= 1.2 x N=1", f"{at_n / at_1:.2f} x", verdict(at_n, 1.2 * at_1)],
            [f"N={n}: last {EDGE} starts <= 1.2 x first {EDGE}", f"{late / early:.2f} x",
             verdict(late, 1.2 * early)],
            [f"N={n}: ctrd RSS <= 64 MiB + 64 KiB x N ({rss_limit / 1024:.0f} MiB)",
             f"{full['ctrd_rss_kib'] / 1024:.1f} MiB", verdict(full["ctrd_rss_kib"], rss_limit)],
        ]
        if scrape_s is not None:
            targets.append([f"N={n}: scrape <= 0.3 ms x N ({0.3 * n:.0f} ms)", ms(scrape_s),
                            verdict(scrape_s * 1000, SCRAPE_MS_PER_CONTAINER * n)])
        if run["running"] != n or run["left_after_stop"]:
            section.add(f"N={n}: {run['running']} running before the stop; left after it: "
                        f"{run['left_after_stop'] or 'nothing'}")
    section.add(
        "Started one after another through the API (\"start all\"; the median of the "
        f"first and of the last {EDGE} of these starts beside it); \"next\" is the median of "
        f"{PROBES} probe containers started (and deleted again, then {SETTLE:g} s pause) with "
        "1 and with N running. Per-container memory is the growth from N = 1 to N, over N - 1. "
        "Times in ms unless said, memory in KiB unless said; "
        "\"host\" is the drop of MemAvailable per container (kernel objects, shim, PID 1: "
        "noisy while colleagues' tests run).",
        table(["N", "start all s", f"first {EDGE}", f"last {EDGE}", "next at 1",
               "next at N", "ratio", "ctrd RSS MiB", "ctrd RSS/ctr", "shim PSS/ctr",
               "host/ctr", "scrape", "stop all s"], rows),
        table(["target (issue 6)", "result", "verdict"], targets))
    section.data = {"runs": runs, "curve": curve(runs)}


def curve(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the plot needs: every start of the largest run, and the probes at its checkpoints."""
    run = max(runs, key=lambda r: r["n"])
    return {"starts": run["starts"],
            "probes": [(p["n"], median(p["probe_s"]), p95(p["probe_s"])) for p in run["points"]]}
