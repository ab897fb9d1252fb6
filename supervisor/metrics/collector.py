"""The Prometheus collector: per-container cgroup and veth counters, and ctrd's own state.

Everything is read when Prometheus scrapes, straight from the kernel (cgroup files, the network
namespace's /proc/net/dev), so counters keep counting across ctrd restarts and nothing is polled
between scrapes.
Names, units and label ``name`` are cAdvisor's, so dashboards made for it work unchanged.

What ctrd knows is read first, in one go (its public view, ``Backend.observe``, a snapshot made
without releasing the GIL while the event loop changes the units, so a change meanwhile costs at
most one stale sample, never an error); the kernel's files after. ctrd's server collects a long
scrape in a forked child (``apart``, ``ForkSafe``). A container whose cgroup cannot be read
(gone between snapshot and read) is left out of the cgroup metrics of that scrape; the rest of
the scrape is unaffected.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample

from supervisor.daemon.view import STATES, Histogram, ImageStats, Observed
from supervisor.metrics.links import LinkCounters, read_links
from supervisor.model import iolimits
from supervisor.model.health import HEALTH_STATUSES
from supervisor.runtime.cgroups import CgroupStats

log = logging.getLogger(__name__)

PACKAGE = "ctr-supervisor"


class Source(Protocol):
    """What the collector reads of ctrd (part of ``supervisor.daemon.view.Backend``)."""

    def observe(self) -> list[Observed]: ...
    def image_stats(self) -> ImageStats: ...
    def start_durations(self) -> Histogram: ...


_UNREADABLE_IMAGES = (OSError, ValueError)  # images.json being replaced, say


@dataclass(frozen=True)
class ForkSafe:
    """A ``Source`` to collect in a forked child of ctrd (or in its thread).

    The answers behind locks that ctrd's threads take are taken here, before the fork: a lock
    that a thread held at the fork stays held in the child for good. ``observe`` takes none (it
    copies dicts under the GIL), so the child reads it from its copy of ctrd, as it was at the
    fork: 5 us a container that ctrd's GIL no longer pays.
    """

    source: Source
    starts: Histogram
    images: ImageStats | OSError | ValueError  # what image_stats() raised: raised again

    @classmethod
    def of(cls, source: Source) -> ForkSafe:
        try:
            images: ImageStats | OSError | ValueError = source.image_stats()
        except _UNREADABLE_IMAGES as exc:
            images = exc
        return cls(source, source.start_durations(), images)

    def observe(self) -> list[Observed]:
        return self.source.observe()

    def image_stats(self) -> ImageStats:
        if isinstance(self.images, Exception):
            raise self.images
        return self.images

    def start_durations(self) -> Histogram:
        return self.starts


Labels = dict[str, str]
# A Sample made as its namedtuple would make it, without the call of its __new__ that fills in
# the defaults (0.6 us of the 1 us a sample took); the fields after the first three are unset.
_new = tuple.__new__
_UNSET = tuple(Sample._field_defaults[field] for field in Sample._fields[3:])
assert Sample._fields[:3] == ("name", "labels", "value")


class Series:
    """A metric family filled as its ``add_metric`` would, minus that method's cost per sample.

    ``add_metric`` zips the label names with a list of values into a new dict for each sample;
    here the caller passes the dict, one per container shared by all its samples with the same
    labels (prometheus-client only reads them). That takes two thirds off the cost of a sample
    (1.6 -> 0.5 us), and a scrape adds about 33 samples per container.
    """

    def __init__(self, family: CounterMetricFamily | GaugeMetricFamily) -> None:
        self.family = family
        # The name of its samples, which add_metric gives a counter's: with "_total".
        self._sample = f"{family.name}_total" if family.type == "counter" else family.name
        self._append = family.samples.append

    @classmethod
    def gauge(cls, name: str, text: str, labels: Iterable[str]) -> Series:
        return cls(GaugeMetricFamily(name, text, labels=list(labels)))

    @classmethod
    def counter(cls, name: str, text: str, labels: Iterable[str]) -> Series:
        return cls(CounterMetricFamily(name, text, labels=list(labels)))

    def add(self, labels: Labels, value: float) -> None:
        self._append(_new(Sample, (self._sample, labels, value, *_UNSET)))


@dataclass(frozen=True)
class Spec:
    """One metric: its name, help, whether it is a counter, and where its value comes from."""

    name: str
    help: str
    counter: bool
    value: Callable[[CgroupStats], float | None]  # None: no sample (e.g. no CPU quota)

    def series(self) -> Series:
        make = Series.counter if self.counter else Series.gauge
        return make(self.name, self.help, ["name"])


def _pressure(resource: str, kind: str, what: str) -> Spec:
    """cAdvisor's PSI counter for ``resource`` (cpu, memory, io): some tasks waited, or none
    could make progress (stalled)."""
    field = f"{resource}_{kind}"
    text = {"waiting": f"Total time duration tasks in the container have waited due to {what} "
                       "congestion.",
            "stalled": "Total time duration no tasks in the container could make progress due "
                       f"to {what} congestion."}[kind]
    return Spec(f"container_pressure_{resource}_{kind}_seconds_total", text, True,
                lambda s: None if s.pressure is None else getattr(s.pressure, field))


CGROUP_METRICS = (
    Spec("container_cpu_usage_seconds_total", "Cumulative CPU time consumed, in seconds.",
         True, lambda s: s.cpu_usage_seconds),
    Spec("container_cpu_user_seconds_total", "Cumulative user CPU time consumed, in seconds.",
         True, lambda s: s.cpu_user_seconds),
    Spec("container_cpu_system_seconds_total", "Cumulative system CPU time consumed, in seconds.",
         True, lambda s: s.cpu_system_seconds),
    Spec("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.",
         True, lambda s: s.cpu_periods),
    Spec("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.",
         True, lambda s: s.cpu_throttled_periods),
    Spec("container_memory_usage_bytes", "Current memory usage in bytes, including all memory "
         "regardless of when it was accessed.", False, lambda s: s.memory_usage_bytes),
    Spec("container_memory_working_set_bytes", "Current working set in bytes: usage minus "
         "inactive file pages.", False, lambda s: s.memory_working_set_bytes),
    Spec("container_memory_rss", "Size of RSS (anonymous memory) in bytes.",
         False, lambda s: s.memory_rss),
    Spec("container_memory_cache", "Number of bytes of page cache memory.",
         False, lambda s: s.memory_cache),
    # cAdvisor reports an unlimited memory limit as 0.
    Spec("container_spec_memory_limit_bytes", "Memory limit for the container, 0 if unlimited.",
         False, lambda s: s.memory_limit_bytes or 0),
    Spec("container_spec_cpu_quota", "CPU quota of the container, in microseconds per period.",
         False, lambda s: s.cpu_quota_us),
    Spec("container_spec_cpu_period", "CPU period of the container, in microseconds.",
         False, lambda s: s.cpu_period_us),
    Spec("container_processes", "Number of processes running inside the container.",
         False, lambda s: s.pids_current),
    Spec("container_oom_events_total", "Count of out of memory kills in the container.",
         True, lambda s: s.oom_kills),
    *(_pressure(resource, kind, what)
      for resource, what in (("cpu", "CPU"), ("memory", "memory"), ("io", "IO"))
      for kind in ("waiting", "stalled")),
)

# metric -> field of the device's counters (cAdvisor's, label ``device`` the node's path)
IO_METRICS = {
    "container_fs_reads_bytes_total": ("read_bytes", "Cumulative count of bytes read."),
    "container_fs_writes_bytes_total": ("write_bytes", "Cumulative count of bytes written."),
    "container_fs_reads_total": ("reads", "Cumulative count of reads completed."),
    "container_fs_writes_total": ("writes", "Cumulative count of writes completed."),
}

# metric -> field of the host end's counters: what the host end sends, the container receives.
NETWORK_METRICS = {
    "container_network_receive_bytes_total": ("tx_bytes", "Cumulative bytes received."),
    "container_network_receive_packets_total": ("tx_packets", "Cumulative packets received."),
    "container_network_receive_errors_total": ("tx_errors", "Cumulative errors receiving."),
    "container_network_receive_packets_dropped_total": (
        "tx_dropped", "Cumulative packets dropped while receiving."),
    "container_network_transmit_bytes_total": ("rx_bytes", "Cumulative bytes transmitted."),
    "container_network_transmit_packets_total": ("rx_packets", "Cumulative packets transmitted."),
    "container_network_transmit_errors_total": ("rx_errors", "Cumulative errors transmitting."),
    "container_network_transmit_packets_dropped_total": (
        "rx_dropped", "Cumulative packets dropped while transmitting."),
}


class ContainerCollector:
    def __init__(self, source: Source,
                 links: Callable[[], Mapping[str, LinkCounters]] = read_links,
                 clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._links = links
        self._clock = clock
        self._version = _version()
        self._devices: dict[str, str] = {}  # MAJ:MIN -> node

    def collect(self) -> Iterator[Metric]:
        seen = self._source.observe()
        yield from _one_by_one(self._ctrd(seen))
        yield from self._starts()
        yield from self._images()
        with_cgroup = [s for s in seen if s.cgroup is not None]
        yield from _one_by_one(self._containers(with_cgroup))
        yield from _one_by_one(self._network(with_cgroup))

    def _starts(self) -> Iterator[Metric]:
        starts = self._source.start_durations()
        durations = HistogramMetricFamily("ctr_container_start_duration_seconds",
                                          "Time from starting to running of each start since "
                                          "ctrd started, fetching the image included.")
        durations.add_metric([], [(_bound(le), count) for le, count in starts.buckets],
                             sum_value=starts.sum)
        yield durations

    def _images(self) -> Iterator[Metric]:
        """The image store and the pulls ctrd made (``ctrctl pull`` counts in its own process)."""
        try:
            stats = self._source.image_stats()
        except _UNREADABLE_IMAGES as exc:
            log.warning("no image metrics: %s", exc)
            return
        images = GaugeMetricFamily("ctr_images", "Number of images in the image store.")
        images.add_metric([], stats.images)
        yield images
        pulls = CounterMetricFamily("ctr_image_pulls", "Image pulls by ctrd, by result.",
                                    labels=["result"])
        pulls.add_metric(["success"], stats.pulls.succeeded)
        pulls.add_metric(["failure"], stats.pulls.failed)
        yield pulls
        pulled = CounterMetricFamily("ctr_image_pull_bytes", "Bytes downloaded by image pulls "
                                     "(compressed, as the registry sends them).")
        pulled.add_metric([], stats.pulls.bytes)
        yield pulled
        durations = HistogramMetricFamily("ctr_image_pull_duration_seconds",
                                          "How long image pulls took, failed ones included.")
        durations.add_metric([], [(_bound(le), count) for le, count in stats.pulls.buckets],
                             sum_value=stats.pulls.seconds)
        yield durations

    def _ctrd(self, seen: list[Observed]) -> list[Metric]:
        build = GaugeMetricFamily("ctr_build_info", "ctrd's version; the value is always 1.",
                                  labels=["version"])
        build.add_metric([self._version], 1)
        counts = dict.fromkeys(STATES, 0)
        restarts = Series.counter("ctr_container_restarts_total",
                                  "Restarts by the restart policy, kept across ctrd restarts.",
                                  ["name"])
        states = Series.gauge("ctr_container_state",
                              "1 for the container's current state, 0 for the others.",
                              ["name", "state"])
        info = Series.gauge("ctr_container_info", "The container's image, definition and "
                            "address (empty when not running); the value is always 1.",
                            ["name", "image", "definition", "ip"])
        exit_codes = Series.gauge("ctr_container_last_exit_code",
                                  "Exit status of the container's last run.", ["name"])
        health = Series.gauge("ctr_container_health", "1 for the health of the running "
                              "container's check (starting, healthy, unhealthy), 0 for the "
                              "others; none for a container without a check.",
                              ["name", "status"])
        for s in seen:
            counts[s.state] += 1
            labels = {"name": s.name}
            restarts.add(labels, s.restarts)
            for state in STATES:
                states.add({"name": s.name, "state": state}, 1 if state == s.state else 0)
            info.add({"name": s.name, "image": s.image, "definition": s.definition,
                      "ip": s.address or ""}, 1)
            if s.exit_code is not None:
                exit_codes.add(labels, s.exit_code)
            if s.health is not None:
                for status in HEALTH_STATUSES:
                    health.add({"name": s.name, "status": status}, 1 if status == s.health else 0)
        containers = GaugeMetricFamily("ctr_containers", "Number of containers by state.",
                                       labels=["state"])
        for state, count in counts.items():
            containers.add_metric([state], count)
        return [build, containers,
                *(series.family for series in (restarts, states, info, exit_codes, health))]

    def _containers(self, seen: list[Observed]) -> list[Metric]:
        now = self._clock()
        cgroup = [(spec.value, spec.series()) for spec in CGROUP_METRICS]
        start = Series.gauge("container_start_time_seconds",
                             "Start time of the container since the Unix epoch, in seconds.",
                             ["name"])
        last_seen = Series.gauge("container_last_seen",
                                 "Last time the container was seen by the exporter.", ["name"])
        events = Series.counter("container_memory_events",
                                "Memory events of the container by kind (memory.events).",
                                ["name", "event"])
        io = [(field, Series.counter(name, text, ["name", "device"]))
              for name, (field, text) in IO_METRICS.items()]
        for s in seen:
            labels = {"name": s.name}
            if s.started_at is not None:
                start.add(labels, s.started_at)
            stats = _stats(s)
            if stats is None:
                continue
            last_seen.add(labels, now)
            for value_of, series in cgroup:
                if (value := value_of(stats)) is not None:
                    series.add(labels, value)
            for event, count in stats.memory_events.items():
                events.add({"name": s.name, "event": event}, count)
            for device in stats.io:
                device_labels = {"name": s.name, "device": self._device(device.device)}
                for field, series in io:
                    series.add(device_labels, getattr(device, field))
        return [*(series.family for _, series in cgroup), start.family, last_seen.family,
                events.family, *(series.family for _, series in io)]

    def _device(self, numbers: str) -> str:
        """``/dev/vda`` for ``254:0``, as cAdvisor labels a device; looked up once per device."""
        name = self._devices.get(numbers)
        if name is None:
            name = self._devices[numbers] = iolimits.node(numbers) or numbers
        return name

    def _network(self, seen: list[Observed]) -> list[Metric]:
        attached = [(s.name, s.interfaces) for s in seen if s.interfaces is not None]
        network = [(field, Series.counter(name, text, ["name", "interface"]))
                   for name, (field, text) in NETWORK_METRICS.items()]
        try:
            links = self._links() if attached else {}
        except OSError as exc:
            log.warning("no network metrics: %s", exc)
            links = {}
        for name, (host_ifname, container_ifname) in attached:
            host_end = links.get(host_ifname)
            if host_end is None:  # detached meanwhile
                continue
            labels = {"name": name, "interface": container_ifname}
            for field, series in network:
                series.add(labels, getattr(host_end, field))
        return [series.family for _, series in network]


def _one_by_one(families: list[Metric]) -> Iterator[Metric]:
    """``families`` in order, each let go of here as it is handed on, so the reader frees one
    family once it has written it (their makers return them in a list and keep none). Held to
    the end of the scrape, the samples of 2000 containers were freed at once, which held the
    GIL, and so ctrd's event loop, for 9-10 ms at each scrape (measured; 5-8 ms at worst this
    way)."""
    families.reverse()
    while families:
        yield families.pop()


def _stats(seen: Observed) -> CgroupStats | None:
    """The container's cgroup statistics, or None when it has none (any more)."""
    if seen.cgroup is None:
        return None
    try:
        return seen.cgroup.stats()
    except OSError as exc:  # removed between the snapshot and the read: a normal race
        log.debug("%s: no cgroup statistics: %s", seen.name, exc)
    except Exception:  # a file the kernel wrote unexpectedly must not fail the whole scrape
        log.exception("%s: cannot read cgroup statistics", seen.name)
    return None


def _bound(le: float) -> str:
    return "+Inf" if le == float("inf") else repr(le)


@functools.cache  # importlib.metadata looks through sys.path each time: 0.5 ms
def _version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"
