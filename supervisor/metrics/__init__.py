"""Per-container Prometheus metrics with cAdvisor's names, read from the kernel at scrape time."""

from supervisor.metrics.collector import ContainerCollector, ForkSafe, Source
from supervisor.metrics.server import MetricsServer, make_registry, serve_metrics, start_server

__all__ = ["ContainerCollector", "ForkSafe", "MetricsServer", "Source", "make_registry",
           "serve_metrics", "start_server"]
