"""The metrics collector against fake cgroup trees of both versions, read back as Prometheus
parses ctrd's exposition: every metric's value and type, and scrapes that survive a container
vanishing under them.
"""

from __future__ import annotations

import gzip
import logging
import os
import socket
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from supervisor.daemon.starts import StartDurations
from supervisor.daemon.states import State
from supervisor.daemon.view import Histogram, ImageStats, Observed
from supervisor.images.stats import PullStats
from supervisor.metrics import (
    ContainerCollector,
    apart,
    exposition,
    make_registry,
    serve_metrics,
    start_server,
)
from supervisor.metrics.links import LinkCounters
from supervisor.model import iolimits
from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import CgroupDriver, files, open_driver
from supervisor.runtime.cgroups.v2 import core
from tests.fake_cgroupfs import (
    CPU_PRESSURE,
    EVERYTHING,
    IO_PRESSURE,
    MEMORY_PRESSURE,
    V1_CPU_STAT,
    V1_CPUACCT_STAT,
    V1_IO_SERVICE_BYTES,
    V1_IO_SERVICED,
    V1_MEMORY_STAT,
    V1_OOM_CONTROL,
    V2_CPU_STAT,
    V2_IO_STAT,
    V2_MEMORY_EVENTS,
    V2_MEMORY_STAT,
    FakeCgroupFs,
    make_v1_root,
    make_v2_root,
    write_files,
)

NO_LIMITS = Resources()
NOW = 1_800_000_000.25
STARTED = 1_799_999_000.5
HOST_END = LinkCounters(rx_bytes=1000, rx_packets=10, rx_errors=1, rx_dropped=2,
                        tx_bytes=5000, tx_packets=50, tx_errors=3, tx_dropped=4)

COUNTERS = {
    "container_cpu_usage_seconds", "container_cpu_user_seconds", "container_cpu_system_seconds",
    "container_cpu_cfs_periods", "container_cpu_cfs_throttled_periods",
    "container_oom_events", "ctr_container_restarts",
    *(f"container_network_{way}_{what}" for way in ("receive", "transmit")
      for what in ("bytes", "packets", "errors", "packets_dropped")),
}
GAUGES = {
    "container_memory_usage_bytes", "container_memory_working_set_bytes", "container_memory_rss",
    "container_memory_cache", "container_spec_memory_limit_bytes", "container_spec_cpu_quota",
    "container_spec_cpu_period", "container_processes", "container_start_time_seconds",
    "container_last_seen", "ctr_container_state", "ctr_container_info",
    "ctr_container_last_exit_code", "ctr_containers", "ctr_build_info",
}


class Scrape:
    """One scrape as Prometheus reads it: types by family, values by series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.text = generate_latest(registry).decode()
        self.types: dict[str, str] = {}
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(self.text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.values[sample.name, frozenset(sample.labels.items())] = sample.value

    def get(self, metric: str, **labels: str) -> float | None:
        return self.values.get((metric, frozenset(labels.items())))

    def series(self, metric: str) -> list[dict[str, str]]:
        return [dict(labels) for name, labels in self.values if name == metric]


class World:
    """What a fake ctrd shows the metrics (its public view), with cgroups in a fake tree."""

    def __init__(self, tmp_path: Path, driver: CgroupDriver) -> None:
        self.tmp_path = tmp_path
        self.driver = driver
        self.seen: dict[str, Observed] = {}
        self.links: dict[str, LinkCounters] = {}
        self.pulls = PullStats()
        self.images = 0
        self.starts = StartDurations()

    def observe(self) -> list[Observed]:
        return sorted(self.seen.values(), key=lambda o: o.name)

    def image_stats(self) -> ImageStats:
        return ImageStats(self.images, self.pulls.counts())

    def start_durations(self) -> Histogram:
        return self.starts.histogram()

    def unit(self, name: str, state: State, restarts: int = 0,
             exit_code: int | None = None) -> Observed:
        self.seen[name] = Observed(name, state.value, name, "busybox", restarts, exit_code)
        return self.seen[name]

    def running(self, name: str, resources: Resources = NO_LIMITS, address: str = "10.88.0.2",
                restarts: int = 0, exit_code: int | None = None) -> Observed:
        """A running container with a cgroup and a veth whose host end has HOST_END's counts."""
        self.seen[name] = Observed(name, State.RUNNING.value, name, "busybox", restarts,
                                   exit_code, started_at=STARTED, address=address,
                                   cgroup=self.driver.create(name, resources),
                                   interfaces=(f"ve-{name}", "eth0"))
        self.links[f"ve-{name}"] = HOST_END
        return self.seen[name]

    def define(self, name: str) -> None:
        """A definition that was never started."""
        self.seen[name] = Observed.defined(name, str(self.tmp_path / "rootfs"))

    def scrape(self, links: Callable[[], dict[str, LinkCounters]] | None = None) -> Scrape:
        registry = CollectorRegistry()
        registry.register(ContainerCollector(self, links or (lambda: self.links),
                                             clock=lambda: NOW))
        return Scrape(registry)


class Nothing:
    """A ctrd with no container at all."""

    def observe(self) -> list[Observed]:
        return []

    def image_stats(self) -> ImageStats:
        return ImageStats(0, PullStats().counts())

    def start_durations(self) -> Histogram:
        return StartDurations().histogram()


@dataclass(frozen=True)
class Tree:
    """A fake cgroup tree, how to make a container's statistics files say what the kernel would,
    and what the metrics must then read."""

    driver: CgroupDriver
    fill: Callable[[str], None]
    expected: dict[str, float]


@pytest.fixture(params=["v1", "v2"])
def tree(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Tree:
    if request.param == "v2":
        root = make_v2_root(tmp_path / "cgroup")
    else:
        root = make_v1_root(tmp_path / "cgroup", unified=True)
    fake = FakeCgroupFs(root)
    monkeypatch.setattr(files, "make_dir", fake.make_dir)
    monkeypatch.setattr(files, "remove_dir", fake.remove_dir)
    driver = open_driver(f"cgroupfs-{request.param}", root=root)

    if request.param == "v2":
        def fill_v2(name: str) -> None:
            write_files(root / "ctr" / name, {
                "cpu.stat": V2_CPU_STAT, "memory.stat": V2_MEMORY_STAT,
                "memory.current": "32210944\n", "memory.events": V2_MEMORY_EVENTS,
                "pids.current": "7\n"})

        return Tree(driver, fill_v2, {
            "container_cpu_usage_seconds_total": 2.345678,
            "container_cpu_user_seconds_total": 1.5,
            "container_cpu_system_seconds_total": 0.845678,
            "container_cpu_cfs_periods_total": 420,
            "container_cpu_cfs_throttled_periods_total": 37,
            "container_memory_usage_bytes": 32210944,
            "container_memory_working_set_bytes": 32210944 - 14626816,
            "container_memory_rss": 10584064,
            "container_memory_cache": 20082688,
            "container_oom_events_total": 2,
            "container_processes": 7,
        })

    def fill_v1(name: str) -> None:
        write_files(root / "cpu" / "ctr" / name, {"cpu.stat": V1_CPU_STAT})
        write_files(root / "cpuacct" / "ctr" / name, {"cpuacct.stat": V1_CPUACCT_STAT,
                                                        "cpuacct.usage": "3141592653\n"})
        write_files(root / "memory" / "ctr" / name, {
            "memory.stat": V1_MEMORY_STAT, "memory.usage_in_bytes": "50331648\n",
            "memory.oom_control": V1_OOM_CONTROL})
        write_files(root / "pids" / "ctr" / name, {"pids.current": "5\n"})

    ticks = os.sysconf("SC_CLK_TCK")
    return Tree(driver, fill_v1, {
        "container_cpu_usage_seconds_total": 3.141592653,
        "container_cpu_user_seconds_total": 250 / ticks,
        "container_cpu_system_seconds_total": 64 / ticks,
        "container_cpu_cfs_periods_total": 512,
        "container_cpu_cfs_throttled_periods_total": 128,
        "container_memory_usage_bytes": 50331648,
        "container_memory_working_set_bytes": 50331648 - 6291456,  # total_inactive_file
        "container_memory_rss": 41943040,  # total_: the whole subtree, as v2 counts
        "container_memory_cache": 8388608,
        "container_oom_events_total": 3,
        "container_processes": 5,
    })


@pytest.fixture
def world(tmp_path: Path, tree: Tree) -> World:
    return World(tmp_path, tree.driver)


def test_every_container_metric_of_a_running_container(world: World, tree: Tree) -> None:
    world.running("web", EVERYTHING)
    tree.fill("web")
    scrape = world.scrape()

    expected = {
        **tree.expected,
        "container_spec_memory_limit_bytes": 256 << 20,
        "container_spec_cpu_quota": 50000,
        "container_spec_cpu_period": 100000,
        "container_start_time_seconds": STARTED,
        "container_last_seen": NOW,
    }
    for metric, value in expected.items():
        assert scrape.get(metric, name="web") == pytest.approx(value), metric
    for direction, host_side in (("receive", "tx"), ("transmit", "rx")):
        for what, counter in (("bytes", "bytes"), ("packets", "packets"),
                              ("errors", "errors"), ("packets_dropped", "dropped")):
            metric = f"container_network_{direction}_{what}_total"
            assert scrape.get(metric, name="web", interface="eth0") == getattr(
                HOST_END, f"{host_side}_{counter}"), metric
    for family in COUNTERS:
        assert scrape.types[family] == "counter", family
    for family in GAUGES:
        assert scrape.types[family] == "gauge", family


def test_each_family_is_freed_once_the_reader_lets_go_of_it(world: World, tree: Tree) -> None:
    """The collector keeps no family it has handed on: freed at the end of a scrape, 2000
    containers' samples held the GIL (ctrd's loop) for 9-10 ms."""
    world.running("web", EVERYTHING)
    tree.fill("web")
    collector = ContainerCollector(world, lambda: world.links, clock=lambda: NOW)
    handed: list[weakref.ref[Metric]] = []  # the families of samples per container
    for family in collector.collect():
        alive = [ref() for ref in handed]
        assert not any(alive), [f.name for f in alive if f is not None]
        if any("name" in sample.labels for sample in family.samples):
            handed.append(weakref.ref(family))
        del family, alive
    assert len(handed) > 20


def test_an_unlimited_container_reports_limit_0_and_no_quota(world: World, tree: Tree) -> None:
    world.running("web")
    tree.fill("web")
    scrape = world.scrape()
    assert scrape.get("container_spec_memory_limit_bytes", name="web") == 0  # as cAdvisor
    assert scrape.series("container_spec_cpu_quota") == []
    assert scrape.series("container_spec_cpu_period") == []


def test_ctrd_state_restarts_info_and_exit_codes(world: World, tree: Tree) -> None:
    world.running("web", restarts=3, exit_code=137, address="10.88.0.7")
    tree.fill("web")
    world.unit("db", State.BACKOFF, restarts=2, exit_code=1)
    world.unit("cache", State.FAILED, restarts=5, exit_code=2)
    world.unit("job", State.EXITED, exit_code=0)
    world.define("idle")
    scrape = world.scrape()

    current = {"web": "running", "db": "backoff", "cache": "failed", "job": "exited",
               "idle": "stopped"}
    for name, now in current.items():
        for state in State:
            assert scrape.get("ctr_container_state", name=name, state=state.value) == (
                1 if state.value == now else 0), (name, state)
    assert {s.value: scrape.get("ctr_containers", state=s.value) for s in State} == {
        "stopped": 1, "starting": 0, "running": 1, "backoff": 1, "stopping": 0, "exited": 1,
        "failed": 1}
    assert {n: scrape.get("ctr_container_restarts_total", name=n) for n in current} == {
        "web": 3, "db": 2, "cache": 5, "job": 0, "idle": 0}
    assert {n: scrape.get("ctr_container_last_exit_code", name=n) for n in current} == {
        "web": 137, "db": 1, "cache": 2, "job": 0, "idle": None}
    assert scrape.get("ctr_container_info", name="web", image="busybox", definition="web",
                      ip="10.88.0.7") == 1
    assert scrape.get("ctr_container_info", name="db", image="busybox", definition="db",
                      ip="") == 1
    assert scrape.get("ctr_container_info", name="idle", image=str(world.tmp_path / "rootfs"),
                      definition="idle", ip="") == 1
    assert scrape.series("ctr_build_info") == [{"version": "0.1.0"}]
    # Only a container that runs has cgroup metrics.
    assert scrape.series("container_cpu_usage_seconds_total") == [{"name": "web"}]
    assert scrape.series("container_network_receive_bytes_total") == [
        {"name": "web", "interface": "eth0"}]


def test_a_vanished_or_unreadable_container_does_not_fail_the_scrape(
        world: World, tree: Tree, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("web", "gone", "broken"):
        world.running(name)
        tree.fill(name)
    gone = world.seen["gone"].cgroup
    assert gone is not None
    gone.destroy()  # torn down between the snapshot of the units and the read
    broken = world.seen["broken"].cgroup
    assert broken is not None
    for directory in broken.directories():
        if (directory / "cpu.stat").exists():
            (directory / "cpu.stat").write_text("garbage\n")
    del world.links["ve-gone"]

    with caplog.at_level(logging.ERROR):
        scrape = world.scrape()
    assert scrape.series("container_cpu_usage_seconds_total") == [{"name": "web"}]
    assert scrape.series("container_last_seen") == [{"name": "web"}]
    assert scrape.get("container_memory_usage_bytes", name="web") == pytest.approx(
        tree.expected["container_memory_usage_bytes"])
    assert {s["name"] for s in scrape.series("container_network_receive_bytes_total")} == {
        "web", "broken"}
    assert scrape.get("ctr_container_state", name="gone", state="running") == 1
    assert "broken: cannot read cgroup statistics" in caplog.text
    assert "gone" not in caplog.text  # a normal race, not an error


def test_no_network_counters_when_they_cannot_be_read(world: World, tree: Tree,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    world.running("web")
    tree.fill("web")

    def refused() -> dict[str, LinkCounters]:
        raise FileNotFoundError(2, "No such file or directory", "/proc/thread-self/net/dev")

    scrape = world.scrape(refused)
    assert scrape.series("container_network_receive_bytes_total") == []
    assert scrape.get("container_cpu_usage_seconds_total", name="web") == pytest.approx(
        tree.expected["container_cpu_usage_seconds_total"])
    assert "no network metrics: " in caplog.text


def test_image_store_and_pulls(world: World) -> None:
    world.images = 3
    world.pulls.record(True, 1000, 0.3)
    world.pulls.record(True, 500, 7.0)
    world.pulls.record(False, 20, 45.0)  # the bytes of a failed pull count too
    scrape = world.scrape()
    assert scrape.types["ctr_images"] == "gauge" and scrape.get("ctr_images") == 3
    assert scrape.types["ctr_image_pulls"] == "counter"
    assert scrape.get("ctr_image_pulls_total", result="success") == 2
    assert scrape.get("ctr_image_pulls_total", result="failure") == 1
    assert scrape.get("ctr_image_pull_bytes_total") == 1520
    assert scrape.types["ctr_image_pull_duration_seconds"] == "histogram"
    bucket = "ctr_image_pull_duration_seconds_bucket"
    assert [scrape.get(bucket, le=le) for le in ("0.25", "0.5", "10.0", "30.0", "60.0", "+Inf")
            ] == [0, 1, 2, 2, 3, 3]
    assert scrape.get("ctr_image_pull_duration_seconds_count") == 3
    assert scrape.get("ctr_image_pull_duration_seconds_sum") == pytest.approx(52.3)


def test_no_pull_yet_is_zeros_not_missing_series(world: World) -> None:
    scrape = world.scrape()
    assert scrape.get("ctr_images") == 0 and scrape.get("ctr_image_pull_bytes_total") == 0
    assert scrape.get("ctr_image_pulls_total", result="success") == 0
    assert scrape.get("ctr_image_pull_duration_seconds_bucket", le="+Inf") == 0


def test_registry_adds_ctrd_process_metrics(world: World) -> None:
    scrape = Scrape(make_registry(world))
    for family in ("process_cpu_seconds", "process_resident_memory_bytes",
                   "process_open_fds", "process_start_time_seconds", "python_info",
                   "ctr_build_info"):
        assert family in scrape.types, family
    assert scrape.get("process_open_fds") is not None


# --- the HTTP server ------------------------------------------------------------------------

def test_serves_metrics_over_http_and_frees_the_port() -> None:
    server = serve_metrics(Nothing(), ("127.0.0.1", 0))
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            body = response.read().decode()
        assert 'ctr_build_info{version="0.1.0"} 1\n' in body
        assert "process_cpu_seconds_total" in body
    finally:
        server.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


class Many:
    """Two families of 2500 samples each: a body of several pieces."""

    def collect(self) -> Iterator[Metric]:
        for name in ("many_a", "many_b"):
            family = GaugeMetricFamily(name, "Many samples.", labels=["name"])
            for i in range(2500):
                family.add_metric([f"c{i}"], i)
            yield family


def test_a_large_body_is_served_whole_in_pieces_gzipped_or_not() -> None:
    """The body goes out in pieces of about a thousand lines (a join of the whole would hold
    the GIL, and so ctrd's loop, for milliseconds); what arrives is the whole text."""
    registry = CollectorRegistry()
    registry.register(Many())
    pieces = exposition.chunks(registry)
    assert len(pieces) > 4  # each of a thousand lines, and the header of a family it begins
    assert all(p.count(b"\n") <= exposition.CHUNK_LINES + 2 for p in pieces)
    whole = exposition.text(registry)
    assert parsed(whole.decode()) == parsed(generate_latest(registry).decode())
    server = start_server(lambda: registry, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            plain, length = response.read(), int(response.headers["Content-Length"])
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            packed, packed_length = response.read(), int(response.headers["Content-Length"])
    finally:
        server.close()
    assert length == len(plain) and packed_length == len(packed)
    assert plain == gzip.decompress(packed) == whole


class Where:
    """A collector that writes down where it runs: its pid and its open descriptors."""

    def __init__(self, record: Path) -> None:
        self.record = record

    def collect(self) -> Iterator[Metric]:
        fds = os.listdir("/proc/self/fd")  # the listing's own descriptor among them
        self.record.write_text(f"{os.getpid()} {' '.join(fds)}")
        yield GaugeMetricFamily("where", "Where the collection ran.", value=1)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def test_a_scrape_is_collected_apart_from_ctrd_with_none_of_its_descriptors(
        tmp_path: Path) -> None:
    """ctrd's state is taken in its process; the collection (the first, as a long one) runs in
    a child, which holds none of ctrd's descriptors (a copy of a pipe's end would hold back
    another's end of file) and is gone once the scrape is answered."""
    record, taken_in = tmp_path / "where", []

    def registry_of() -> CollectorRegistry:
        taken_in.append(os.getpid())
        registry = CollectorRegistry()
        registry.register(Where(record))
        return registry

    server = start_server(registry_of, "127.0.0.1", 0)
    held_r, held_w = os.pipe()
    try:
        assert "\nwhere 1\n" in _get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.close()
        os.close(held_r)
        os.close(held_w)
    pid, *fds = record.read_text().split()
    assert taken_in == [os.getpid()] and int(pid) != os.getpid()
    assert len(set(fds) - {"0", "1", "2"}) == 2, fds  # the pipe to ctrd, and the listing
    assert not Path(f"/proc/{pid}").exists()  # reaped, not a zombie


def test_ctrds_process_metrics_are_ctrds_though_read_in_the_child() -> None:
    here = CollectorRegistry()
    ProcessCollector(registry=here)
    started = Scrape(here).get("process_start_time_seconds")
    server = serve_metrics(Nothing(), ("127.0.0.1", 0))
    assert server is not None
    try:
        served = _get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.close()
    assert parsed(served)["process_start_time_seconds"][1][
        ("process_start_time_seconds", frozenset())] == started


def test_a_failed_collection_answers_500_and_the_next_scrape_is_served(
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In the child (the first scrape forks) and in the thread (the quick ones after it)."""
    monkeypatch.setattr(apart, "FORK_FROM", 1.0)
    class Broken:
        def collect(self) -> Iterator[Metric]:
            raise RuntimeError("a collector broke")

    registries: list[Collector] = [Broken(), Many(), Broken(), Many()]
    server = start_server(lambda: registries.pop(0), "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as failed:
                _get(url)
            assert failed.value.code == 500
            assert "many_a" in _get(url)
    finally:
        server.close()
    assert capfd.readouterr().err.count("RuntimeError: a collector broke") == 2  # tracebacks
    assert "metrics: the collecting process" in caplog.text
    assert "ended with status 1" in caplog.text
    assert "metrics: the collection failed: RuntimeError('a collector broke')" in caplog.text


def test_a_quick_collection_stays_in_the_thread_and_a_long_one_forks_the_next(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fork holds ctrd's GIL too (2-7 ms at 2000 containers): worth it only for a long
    collection. Nothing known yet, the first one forks."""
    monkeypatch.setattr(apart, "FORK_FROM", 0.2)
    placement, pause = apart.Placement(), 0.0

    def where() -> list[bytes]:
        time.sleep(pause)
        return [str(os.getpid()).encode()]

    here = str(os.getpid()).encode()
    assert placement.collected(where) != [here]  # the first
    assert placement.collected(where) == [here]  # the last was quick
    pause = 0.3
    assert placement.collected(where) == [here]
    assert placement.collected(where) != [here]  # the last took 0.3 s
    pause = 0.0
    assert placement.collected(where) != [here]
    assert placement.collected(where) == [here]


def test_a_collection_past_the_deadline_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apart, "DEADLINE", 0.5)
    started = time.monotonic()

    def stuck() -> list[bytes]:
        time.sleep(60)
        return [b"late"]

    with pytest.raises(apart.CollectionFailed, match=r"took over 0\.5 s"):
        apart.collected(stuck)
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # reaped


def test_off_serves_nothing_and_a_taken_port_leaves_ctrd_running(
        caplog: pytest.LogCaptureFixture) -> None:
    assert serve_metrics(Nothing(), None) is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve_metrics(Nothing(), ("127.0.0.1", port)) is None
    assert f"cannot listen on 127.0.0.1:{port}" in caplog.text


# --- pressure, memory events, IO, start durations ---------------------------------------------

@pytest.fixture
def pressure_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a kernel with PSI, whatever the machine running the tests has."""
    monkeypatch.setattr(core, "host_has_pressure", lambda: True)


def _fill_pressure_events_and_io(tree: Tree, name: str) -> None:
    """The kernel's pressure (the unified directory on v1), memory events and IO counters."""
    driver = tree.driver
    cgroup = driver.open(name)
    for directory in cgroup.directories():
        if (directory / "cpu.pressure").exists():
            write_files(directory, {"cpu.pressure": CPU_PRESSURE, "io.pressure": IO_PRESSURE,
                                    "memory.pressure": MEMORY_PRESSURE})
        if (directory / "io.stat").exists():
            write_files(directory, {"io.stat": V2_IO_STAT})
        if (directory / "blkio.throttle.io_serviced_recursive").exists():
            write_files(directory, {
                "blkio.throttle.io_service_bytes_recursive": V1_IO_SERVICE_BYTES,
                "blkio.throttle.io_serviced_recursive": V1_IO_SERVICED})
        if (directory / "memory.failcnt").exists():
            write_files(directory, {"memory.failcnt": "17\n"})


def test_pressure_memory_events_and_io_as_cadvisor_names_them(
        world: World, tree: Tree, pressure_kept: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sys_block = tmp_path / "sys-dev-block"
    (sys_block / "254:0").mkdir(parents=True)
    (sys_block / "254:0" / "uevent").write_text("MAJOR=254\nMINOR=0\nDEVNAME=vda\n")
    monkeypatch.setattr(iolimits, "SYS_BLOCK", sys_block)
    world.running("web")
    tree.fill("web")
    _fill_pressure_events_and_io(tree, "web")
    scrape = world.scrape()

    pressure = {"cpu": (2.5, 0.125), "memory": (42e-6, 21e-6), "io": (7.0, 5.0)}
    for resource, (waiting, stalled) in pressure.items():
        for kind, value in (("waiting", waiting), ("stalled", stalled)):
            family = f"container_pressure_{resource}_{kind}_seconds"
            assert scrape.types[family] == "counter"
            assert scrape.get(f"{family}_total", name="web") == pytest.approx(value), family
    assert scrape.types["container_memory_events"] == "counter"
    events = {s["event"]: scrape.get("container_memory_events_total", **s)
              for s in scrape.series("container_memory_events_total")}
    # v2 has memory.events' every counter; v1 the limit hits (failcnt) and the OOM kills
    assert events == ({"low": 0, "high": 0, "max": 17, "oom": 2, "oom_kill": 2,
                       "oom_group_kill": 0} if tree.driver.name == "cgroupfs-v2" else
                      {"max": 17, "oom_kill": 3})
    io = {"container_fs_reads_bytes_total": 5242880, "container_fs_writes_bytes_total": 10485760,
          "container_fs_reads_total": 10, "container_fs_writes_total": 20}
    for metric, value in io.items():
        assert scrape.types[metric.removesuffix("_total")] == "counter"
        assert scrape.get(metric, name="web", device="/dev/vda") == value, metric


def test_a_device_sysfs_does_not_name_is_labelled_by_its_numbers(
        world: World, tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iolimits, "SYS_BLOCK", tmp_path / "none")
    world.running("web")
    tree.fill("web")
    _fill_pressure_events_and_io(tree, "web")
    scrape = world.scrape()
    assert scrape.get("container_fs_reads_total", name="web", device="254:0") == 10


def test_no_pressure_series_where_the_kernel_keeps_none(
        world: World, tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "host_has_pressure", lambda: False)
    world.running("web")
    tree.fill("web")
    scrape = world.scrape()
    assert scrape.series("container_pressure_cpu_waiting_seconds_total") == []
    assert scrape.get("container_cpu_usage_seconds_total", name="web") is not None


def test_start_durations_histogram(world: World) -> None:
    for seconds in (0.02, 0.03, 0.4, 12.0):
        world.starts.observe(seconds)
    scrape = world.scrape()
    assert scrape.types["ctr_container_start_duration_seconds"] == "histogram"
    bucket = "ctr_container_start_duration_seconds_bucket"
    assert [scrape.get(bucket, le=le) for le in ("0.01", "0.025", "0.05", "0.5", "10.0", "30.0",
                                                 "+Inf")] == [0, 1, 2, 3, 3, 4, 4]
    assert scrape.get("ctr_container_start_duration_seconds_count") == 4
    assert scrape.get("ctr_container_start_duration_seconds_sum") == pytest.approx(12.45)


# --- the exposition ---------------------------------------------------------------------------

def parsed(text: str) -> dict[str, tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]]:
    """Family -> (type, value by sample name and labels), as Prometheus parses the text."""
    return {family.name: (family.type, {(sample.name, frozenset(sample.labels.items())):
                                        sample.value for sample in family.samples})
            for family in text_string_to_metric_families(text)}


def test_ctrds_exposition_parses_as_prometheus_clients_does(
        world: World, tree: Tree, pressure_kept: None) -> None:
    world.running("web", EVERYTHING)
    tree.fill("web")
    _fill_pressure_events_and_io(tree, "web")
    world.unit("db", State.BACKOFF, restarts=2, exit_code=1)
    world.define("idle")
    world.starts.observe(0.03)
    world.pulls.record(True, 1000, 0.3)
    registry = make_registry(Nothing())  # ctrd's process, Python and GC metrics
    registry.register(ContainerCollector(world, lambda: world.links, clock=lambda: NOW))
    ours, theirs = exposition.text(registry).decode(), generate_latest(registry).decode()
    ours_parsed, theirs_parsed = parsed(ours), parsed(theirs)
    assert ours_parsed.keys() == theirs_parsed.keys()
    for family, (kind, samples) in theirs_parsed.items():
        if family.startswith(("process_", "python_gc")):  # ctrd's own, read twice: moved on
            assert ours_parsed[family][0] == kind and ours_parsed[family][1].keys() == (
                samples.keys()), family
        else:
            assert ours_parsed[family] == (kind, samples), family


def test_label_values_are_escaped() -> None:
    class Odd:
        def collect(self) -> Iterator[Metric]:
            family = GaugeMetricFamily("odd", "A help text with a \\ and\na newline.",
                                       labels=["value"])
            family.add_metric(['a "quoted" \\ back\nslash'], 1.5)
            family.add_metric(["plain"], float("inf"))
            yield family

    registry = CollectorRegistry()
    registry.register(Odd())
    ours = exposition.text(registry).decode()
    assert ours == generate_latest(registry).decode()
    odd = 'a "quoted" \\ back\nslash'
    assert parsed(ours)["odd"][1][("odd", frozenset({("value", odd)}))] == 1.5
