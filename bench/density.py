"""Part 2: density. N busybox ``sleep`` containers under one ctrd, with veth and with network
"none", started one after another as an administrator's script would, then all removed with
one ``DELETE /v1/containers``.

Every start is timed (request to RUNNING) against the number already running, for the plot. At
checkpoints the benchmark also measures: the start latency of "the next one" (probe containers
started and deleted again, after a pause in which ctrd's warm pool refills), ctrd's RSS and PSS,
the PSS of the ctr-shim processes (one per container, ctr's other per-container cost), the host's
MemAvailable, the time of a whole ``GET /metrics``, and how late ctrd's event loop answers while
it is scraped: a cheap API request (``GET /v1/containers/NAME``) timed back to back while
another process scrapes back to back, against the same request with no scrape. Each N gets a
fresh ctrd, so its memory starts from the same baseline. A Linux bridge takes at most 1024 ports
(BR_MAX_PORTS), so veth runs stop at 1000.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
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
NETWORKS = {"veth": DEFINITION, "none": DEFINITION + '[network]\nmode = "none"\n'}
BRIDGE_PORTS = 1000  # of the kernel's 1024 (BR_MAX_PORTS)
PROBES = 7  # starts of "the next one" at each checkpoint
# After a probe's removal the kernel dismantles its network namespace in a work queue, holding
# the rtnl lock a while: a start made at once would measure that, not N. The pause also lets
# ctrd's warm pool make the next prepared start, as it has between an administrator's starts.
SETTLE = 0.3
EDGE = 20  # the first and the last starts of the sequence compared
SCRAPES = 5
LATENESS_SECONDS = 3.0
RSS_BASE_MIB, RSS_PER_CONTAINER_KIB = 64, 32  # the targets
SCRAPE_MS_PER_CONTAINER = 0.2
LATENESS_MS = 5.0
SCRAPER = """
import sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
while time.monotonic() < end:
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
"""


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
                    f"http://127.0.0.1:{ctrd.metrics_port}/metrics", timeout=120) as answer:
                answer.read()
        except OSError:
            return None
        times.append(time.perf_counter() - begin)
    return median(times)


def request_times(ctrd: Ctrd, name: str, seconds: float) -> list[float]:
    """Seconds each of back-to-back ``GET /v1/containers/NAME`` took over ``seconds``."""
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        begin = time.perf_counter()
        ctrd.get(name)
        times.append(time.perf_counter() - begin)
    return times


def lateness(ctrd: Ctrd, name: str) -> dict[str, float]:
    """How much longer a cheap API request takes while ctrd is scraped back to back than
    without: its median idle, and its 99th percentile and worst while scraped."""
    idle = request_times(ctrd, name, 1.0)
    scraper = subprocess.Popen([sys.executable, "-c", SCRAPER,
                                f"http://127.0.0.1:{ctrd.metrics_port}/metrics",
                                str(LATENESS_SECONDS)])
    try:
        time.sleep(0.2)  # the first scrape under way
        busy = request_times(ctrd, name, LATENESS_SECONDS - 0.4)
    finally:
        scraper.wait(timeout=300)
    base = statistics.median(idle)
    return {"idle_s": base, "p99_s": statistics.quantiles(busy, n=100)[98] - base,
            "worst_s": max(busy) - base}


def checkpoint(ctrd: Ctrd, definition: str, n: int, tag: str, running: str) -> dict[str, Any]:
    probes = []
    for i in range(PROBES):
        time.sleep(SETTLE)
        name = f"{tag}p{i}"
        begin = time.perf_counter()
        ctrd.launch(definition, name)
        probes.append(time.perf_counter() - begin)
        ctrd.remove(name)
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
        "lateness": lateness(ctrd, running),
    }


def one_density(prefix: str, pool: str, network: str, n_max: int,
                every: int) -> dict[str, Any]:
    """Start ``n_max`` containers under a fresh ctrd, measuring every ``every``; remove them."""
    tag = f"{prefix}{network[0]}{n_max}"
    starts: list[tuple[int, float]] = []
    points = []
    bridge = f"{prefix}br{network[0]}{n_max}"
    with Ctrd(prefix, bridge, pool, {"sleeper": NETWORKS[network]}) as ctrd:
        began = time.perf_counter()
        for n in range(n_max):
            begin = time.perf_counter()
            ctrd.launch("sleeper", f"{tag}c{n}")
            starts.append((n, time.perf_counter() - begin))
            if n + 1 == 1 or (n + 1) % every == 0 or n + 1 == n_max:
                paused = time.perf_counter()
                points.append(checkpoint(ctrd, "sleeper", n + 1, tag, f"{tag}c0"))
                began += time.perf_counter() - paused  # checkpoints are not start time
        total_start = time.perf_counter() - began
        running = sum(1 for view in ctrd.call("GET", "/v1/containers")
                      if view["state"] == "running")
        begin = time.perf_counter()
        ctrd.remove_all()
        stop_all = time.perf_counter() - begin
        # what of them is left (the bridge stays while ctrd runs, as docker0 does)
        left = [thing for thing in host.leftovers(prefix) if thing != f"interface {bridge}"]
    return {"n": n_max, "network": network, "starts": starts, "points": points,
            "total_start_s": total_start, "running": running, "stop_all_s": stop_all,
            "left_after_stop": left}


def measure(prefix: str, pool: str, sizes: Sequence[int]) -> Section:
    section = Section("Density: N containers under one ctrd")
    runs = [one_density(prefix, pool, network, n, every=max(n // 5, 1))
            for network in NETWORKS for n in sizes
            if network != "veth" or n <= BRIDGE_PORTS]
    skipped = [n for n in sizes if n > BRIDGE_PORTS]
    if skipped:
        section.add(f"veth at N = {', '.join(map(str, skipped))}: not run, a bridge takes at "
                    f"most 1024 ports (the kernel's BR_MAX_PORTS) and ctrd has one bridge.")
    report(section, runs)
    return section


def report(section: Section, runs: list[dict[str, Any]]) -> None:
    rows, targets = [], []
    for run in runs:
        one, full = run["points"][0], run["points"][-1]
        n, network = run["n"], run["network"]
        at_1, at_n = median(one["probe_s"]), median(full["probe_s"])
        # per container from N = 1 to N (the first start also loads code and makes the bridge)
        rss_delta = (full["ctrd_rss_kib"] - one["ctrd_rss_kib"]) / (n - 1)
        host_delta = (one["mem_available_kib"] - full["mem_available_kib"]) / (n - 1)
        scrape_s, late = full["scrape_s"], full["lateness"]
        seconds = [elapsed for _, elapsed in run["starts"]]
        early, last = median(seconds[:EDGE]), median(seconds[-EDGE:])
        rows.append([
            network, n, f"{run['total_start_s']:.1f}", ms(early), ms(last), ms(at_1), ms(at_n),
            f"{at_n / at_1:.2f}", f"{full['ctrd_rss_kib'] / 1024:.1f}", f"{rss_delta:.0f}",
            f"{full['shims_pss_kib'] / max(full['shims'], 1):.0f}", f"{host_delta:.0f}",
            "not served" if scrape_s is None else ms(scrape_s),
            f"{ms(late['p99_s'])} / {ms(late['worst_s'])}", f"{run['stop_all_s']:.1f}"])
        rss_limit = RSS_BASE_MIB * 1024 + RSS_PER_CONTAINER_KIB * n
        what = f"{network}, N={n}"
        targets += [
            [f"{what}: next start <= 1.2 x N=1", f"{at_n / at_1:.2f} x",
             verdict(at_n, 1.2 * at_1)],
            [f"{what}: last {EDGE} starts <= 1.2 x first {EDGE}", f"{last / early:.2f} x",
             verdict(last, 1.2 * early)],
            [f"{what}: ctrd RSS <= {RSS_BASE_MIB} MiB + {RSS_PER_CONTAINER_KIB} KiB x N "
             f"({rss_limit / 1024:.0f} MiB)", f"{full['ctrd_rss_kib'] / 1024:.1f} MiB",
             verdict(full["ctrd_rss_kib"], rss_limit)],
            [f"{what}: event loop late <= {LATENESS_MS:g} ms while scraped (worst)",
             f"{ms(late['worst_s'])} ms", verdict(late["worst_s"] * 1000, LATENESS_MS)],
        ]
        if scrape_s is not None:
            targets.append([f"{what}: scrape <= {SCRAPE_MS_PER_CONTAINER} ms x N "
                            f"({SCRAPE_MS_PER_CONTAINER * n:.0f} ms)",
                            f"{ms(scrape_s)} ms ({scrape_s * 1000 / n:.3f} / container)",
                            verdict(scrape_s * 1000, SCRAPE_MS_PER_CONTAINER * n)])
        if run["running"] != n or run["left_after_stop"]:
            section.add(f"{what}: {run['running']} running before the stop; left after it: "
                        f"{run['left_after_stop'] or 'nothing'}")
    section.add(
        "Started one after another through the API (\"start all\"; the median of the "
        f"first and of the last {EDGE} of these starts beside it); \"next\" is the median of "
        f"{PROBES} probe containers started (each after a {SETTLE:g} s pause, then deleted) with "
        "1 and with N running. Per-container memory is the growth from N = 1 to N, over N - 1. "
        "\"late\": how much longer than idle a GET /v1/containers/NAME took while another "
        f"process scraped /metrics back to back for {LATENESS_SECONDS:g} s, 99th percentile / "
        "worst. Times in ms unless said, memory in KiB unless said; \"host\" is the drop of "
        "MemAvailable per container (kernel objects, shim, PID 1: noisy while colleagues' tests "
        "run).",
        table(["network", "N", "start all s", f"first {EDGE}", f"last {EDGE}", "next at 1",
               "next at N", "ratio", "ctrd RSS MiB", "ctrd RSS/ctr", "shim PSS/ctr",
               "host/ctr", "scrape", "late", "stop all s"], rows),
        table(["target (issue 17)", "result", "verdict"], targets))
    section.data = {"runs": runs, "curve": curve(runs)}


def curve(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What the plot needs: every start of the largest veth run (else the largest), and the
    probes at its checkpoints."""
    run = max(runs, key=lambda r: (r["network"] == "veth", r["n"]))
    return {"starts": run["starts"],
            "probes": [(p["n"], median(p["probe_s"]), p95(p["probe_s"])) for p in run["points"]]}
