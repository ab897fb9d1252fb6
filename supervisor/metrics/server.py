"""``/metrics`` over HTTP in threads of its own, so that a scrape never stalls ctrd's event loop.

prometheus_client's server answers each request in a new thread and speaks whichever format
Prometheus asks for (text or OpenMetrics, gzipped or not).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from supervisor.metrics.collector import ContainerCollector, Source

log = logging.getLogger(__name__)


def make_registry(source: Source) -> CollectorRegistry:
    """The containers' metrics, and ctrd's own process, Python and garbage-collector metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(ContainerCollector(source))
    return registry


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serve_metrics(source: Source, listen: tuple[str, int] | None) -> MetricsServer | None:
    """Serve ``/metrics`` on ``listen`` (None: off). A port that cannot be had is logged and
    leaves ctrd without metrics rather than its containers without a supervisor."""
    if listen is None:
        return None
    host, port = listen
    try:
        server, thread = start_http_server(port, host, make_registry(source))
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%d: %s; serving no metrics", host, port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return MetricsServer(server, thread)
