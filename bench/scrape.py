"""Scrape cost of ctrd's /metrics with 10, 100, 500 and 2000 containers, and what it costs the
loop.

Each container is what the collector reads of a running one: a real cgroup (made by the host's
cgroup driver, under ``ctr-bench``) and a real veth whose host end is in a network namespace of
this benchmark, with the container ends in a second one, so nothing shows on the host. The
cgroups hold no process, which changes nothing for the collector: it reads the same files. A
bridge takes at most 1024 ports, so the veths are spread over one bridge per 1000.

Reports the time of a whole scrape over HTTP from another process (as Prometheus sees it) and
of the collection alone, per container, and the largest delay of an asyncio loop in the main
thread (as ctrd's event loop) while that process scrapes back to back.

Run as root: ``.venv/bin/python bench/scrape.py [COUNT ...]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from prometheus_client.registry import CollectorRegistry

from supervisor.ctrd import tune_interpreter
from supervisor.daemon.starts import StartDurations
from supervisor.daemon.states import State
from supervisor.daemon.unit import ContainerLauncher, Context, Record, Unit
from supervisor.daemon.view import Histogram, ImageStats, Observed
from supervisor.images.stats import PullStats
from supervisor.metrics import ContainerCollector, ForkSafe, start_server
from supervisor.metrics.exposition import text
from supervisor.metrics.links import LinkCounters, read_links
from supervisor.model.spec import ContainerSpec, Resources
from supervisor.runtime import syscalls
from supervisor.runtime.cgroups import CgroupDriver, open_driver
from supervisor.runtime.container import Container
from supervisor.runtime.network import netlink
from supervisor.runtime.network.attachment import Attachment
from supervisor.runtime.network.netns import run_in_netns
from supervisor.runtime.paths import Dirs

COUNTS = (10, 100, 500, 2000)
PARENT = "ctr-bench"
BATCH = 50  # netlink requests per datagram: the acks of many more overflow the socket buffer
PORTS = 1000  # veths per bridge: the kernel takes at most 1024 (BR_MAX_PORTS)
RESOURCES = Resources(memory_max=64 << 20, cpu_quota=0.5)

SCRAPER = """
import statistics, sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
times, end = [], time.monotonic() + seconds
while time.monotonic() < end or len(times) < 5:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    times.append(time.perf_counter() - start)
print(statistics.median(times))
"""


@dataclass
class Units:
    """ctrd's units as the metrics see them (``Supervisor.observe`` without definitions)."""

    units: dict[str, Unit] = field(default_factory=dict)
    starts: StartDurations = field(default_factory=StartDurations)

    def observe(self) -> list[Observed]:
        return sorted((unit.observed() for unit in list(self.units.values())),
                      key=lambda o: o.name)

    def image_stats(self) -> ImageStats:
        return ImageStats(0, PullStats().counts())

    def start_durations(self) -> Histogram:
        return self.starts.histogram()


def new_netns() -> int:
    """A descriptor of a new network namespace (which lives as long as it is open)."""
    made: list[int] = []

    def make() -> None:  # in a thread: unshare moves only the calling thread
        syscalls.unshare(syscalls.CLONE_NEWNET)
        made.append(os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    return made[0]


@contextlib.contextmanager
def containers(count: int, driver: CgroupDriver, host: int, peers: int,
               tmp: Path) -> Iterator[Units]:
    """``count`` containers' worth of cgroups and veths; all removed afterwards."""
    source = Units()
    dirs = Dirs(tmp / "state", tmp / "data")
    ctx = Context(dirs=dirs, launcher=ContainerLauncher(dirs, driver), pool="10.0.0.0/8",
                  bridge="br-bench", units=source.units)
    addresses = IPv4Network("10.0.0.0/8").hosts()
    next(addresses)
    try:
        for i in range(count):
            name = f"bench-{i}"
            spec = ContainerSpec(name=name, image="busybox", resources=RESOURCES)
            unit = Unit(spec, ctx, Record(definition="bench", restarts=i % 3))
            unit.state = State.RUNNING
            container = Container(spec, ctx.dirs, driver)
            container.cgroup = driver.create(name, RESOURCES)
            container.attachment = Attachment(f"vb-{i}", "eth0",
                                              IPv4Interface(f"{next(addresses)}/8"),
                                              IPv4Address("10.0.0.1"), "br-bench")
            container.started_at = time.time()
            unit.container = container
            source.units[name] = unit
        run_in_netns(host, lambda: plug(source, peers))
        yield source
    finally:
        for unit in source.units.values():
            if unit.container is not None and unit.container.cgroup is not None:
                unit.container.cgroup.destroy()
        run_in_netns(host, unplug)


def plug(source: Units, peers: int) -> None:
    attached = [u.container.attachment for u in source.units.values()
                if u.container is not None and u.container.attachment is not None]
    with netlink.Netlink() as nl:
        unplug()
        requests = []
        for first in range(0, len(attached), PORTS):
            name = f"br-bench{first // PORTS}"
            nl.run(netlink.new_bridge(name, f"02:00:00:00:{first // PORTS:02x}:01"))
            bridge = socket.if_nametoindex(name)
            requests += [netlink.new_veth(attachment.host_ifname, bridge, f"p{first + i}", peers)
                         for i, attachment in enumerate(attached[first:first + PORTS])]
        for start in range(0, len(requests), BATCH):
            nl.run(*requests[start:start + BATCH])


def unplug() -> None:
    """Delete the bridges and their ports: each veth takes its peer along."""
    requests = [netlink.delete_link(name=name) for _, name in socket.if_nameindex()
                if name.startswith(("vb-", "br-bench"))]
    with netlink.Netlink() as nl:
        for start in range(0, len(requests), BATCH):
            nl.run(*requests[start:start + BATCH])


def timed(function: Callable[[], object], rounds: int) -> float:
    """Median seconds of ``function()`` over ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def loop_delay(seconds: float, tick: float = 0.001) -> tuple[float, float]:
    """(99th percentile, worst) lateness of a ``tick`` sleep on this loop over ``seconds``."""
    late = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.monotonic()
        await asyncio.sleep(tick)
        late.append(time.monotonic() - start - tick)
    return statistics.quantiles(late, n=100)[98], max(late)


Delay = tuple[float, float]


def _links_of(host: int) -> Callable[[], dict[str, LinkCounters]]:
    """The links of the namespace ``host``, read through this process's descriptor by its /proc
    path: the server's collecting child has closed its own copy."""
    path = f"/proc/{os.getpid()}/fd/{host}"

    def links() -> dict[str, LinkCounters]:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return run_in_netns(fd, read_links)
        finally:
            os.close(fd)
    return links


def measure(source: Units, host: int) -> tuple[float, float, Delay, Delay]:
    """(collection s, HTTP scrape s, loop delay idle s, loop delay while scraping s)."""
    def collect() -> None:
        registry = CollectorRegistry()
        registry.register(ContainerCollector(source))
        text(registry)

    collection = run_in_netns(host, lambda: timed(collect, 20))
    # Served as serve_metrics does, reading the links of the benchmark's namespace, scraped by
    # another process as Prometheus would, back to back.
    def registry_of() -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(ContainerCollector(ForkSafe.of(source), links=_links_of(host)))
        return registry

    server = start_server(registry_of, "127.0.0.1", 0)
    try:
        idle = asyncio.run(loop_delay(1.0))
        scraper = subprocess.Popen([sys.executable, "-c", SCRAPER,
                                    f"http://127.0.0.1:{server.port}/metrics", "3"],
                                   stdout=subprocess.PIPE, text=True)
        try:
            busy = asyncio.run(loop_delay(3.0))
            scrape = float(scraper.communicate(timeout=120)[0])
        finally:
            scraper.kill()
            scraper.wait()
    finally:
        server.close()
    return collection, scrape, idle, busy


def main(argv: list[str]) -> int:
    counts = [int(a) for a in argv] or list(COUNTS)
    tune_interpreter()  # this process stands for ctrd: its threads, its loop
    driver = open_driver("auto", parent=PARENT)
    host, peers = new_netns(), new_netns()
    tmp = Path(f"/tmp/ctr-bench-scrape-{os.getpid()}")
    print(f"cgroup driver {driver.name}; times are medians; loop delay: lateness of a 1 ms sleep "
          f"on an asyncio loop, 99th percentile / worst, idle and while scraped back to back")
    print(f"{'containers':>10} {'scrape ms':>10} {'per ctr ms':>11} {'collect ms':>11} "
          f"{'per ctr ms':>11} {'loop delay idle ms':>19} {'scraping ms':>12}")
    try:
        for count in counts:
            with containers(count, driver, host, peers, tmp) as source:
                collection, scrape, idle, busy = measure(source, host)
            print(f"{count:>10} {scrape * 1e3:>10.2f} {scrape / count * 1e3:>11.3f} "
                  f"{collection * 1e3:>11.2f} {collection / count * 1e3:>11.3f} "
                  f"{idle[0] * 1e3:>11.2f} / {idle[1] * 1e3:<5.2f} "
                  f"{busy[0] * 1e3:>5.2f} / {busy[1] * 1e3:.2f}")
    finally:
        os.close(host)
        os.close(peers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
