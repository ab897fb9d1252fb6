"""``/metrics`` over HTTP in threads of its own, so that a scrape never stalls ctrd's event loop.

Each request is answered in a thread of its own, which collects the scrape, or forks the child
that does when scrapes take long (``apart``), with the text format (0.0.4, the one Prometheus
reads from cAdvisor and node_exporter, whatever else it would accept), written by
``exposition`` at a fraction of prometheus-client's cost, and gzipped at the fastest level when
the client takes gzip (Prometheus does): on loopback the bytes cost less than the compressing.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from supervisor.metrics import apart, exposition
from supervisor.metrics.collector import ContainerCollector, ForkSafe, Source

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
# Made at each request in its thread, in ctrd's process; collected there or in a forked child.
RegistryOf = Callable[[], Collector]


def make_registry(source: Source) -> CollectorRegistry:
    """The containers' metrics, and ctrd's own process, Python and garbage-collector metrics
    (of the process that makes it: the child that collects it reads ctrd's /proc files)."""
    registry = CollectorRegistry()
    ctrd = os.getpid()
    ProcessCollector(pid=lambda: ctrd, registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(ContainerCollector(source))
    return registry


def metrics_app(registry_of: RegistryOf) -> Callable[[dict[str, Any], StartResponse],
                                                      Iterable[bytes]]:
    """A WSGI application serving the registry ``registry_of()`` makes, on every path (GET and
    HEAD)."""
    placement = apart.Placement()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        packed = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        with _no_collection():
            registry = registry_of()
            try:
                body = placement.collected(lambda: _exposition(registry, packed))
            except apart.CollectionFailed as exc:
                log.error("metrics: %s", exc)
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [f"{exc}\n".encode()]
        headers = [("Content-Type", exposition.CONTENT_TYPE)]
        if packed:
            headers.append(("Content-Encoding", "gzip"))
        # The pieces as they are (each written on its own): joined, they would hold the GIL
        headers.append(("Content-Length", str(sum(len(piece) for piece in body))))
        start_response("200 OK", headers)
        return body
    return app


def _exposition(registry: Collector, packed: bool) -> list[bytes]:
    pieces = exposition.chunks(registry)
    return _gzipped(pieces) if packed else pieces


def _gzipped(pieces: list[bytes]) -> list[bytes]:
    """The gzip stream of ``pieces``, at the fastest level, piece by piece (zlib lets go of the
    GIL while it compresses)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: the gzip header and trailer
    out = [compressor.compress(piece) for piece in pieces]
    out.append(compressor.flush())
    return [piece for piece in out if piece]


_collections = threading.Lock()
_scrapes = 0  # in progress, with the garbage collector off
_enabled = True  # whether it was on before them


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector off while a scrape runs, here and in its child (forked with
    it off): the collection makes ~50 objects per container, which set off collections, and a
    full one over a ctrd of 2000 containers takes 100 ms and more (measured, bench/scrape.py),
    here on the event loop's GIL, there copying every page it scans. What a scrape makes holds
    no cycle: reference counting frees it all."""
    global _scrapes, _enabled
    with _collections:
        _scrapes += 1
        if _scrapes == 1:
            _enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _collections:
            _scrapes -= 1
            if _scrapes == 0 and _enabled:
                gc.enable()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress does not hold up ctrd's exit


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None  # a line per scrape is noise


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


def start_server(registry_of: RegistryOf, host: str, port: int) -> MetricsServer:
    """Serve the registry ``registry_of()`` makes at each request on ``host:port`` (an IPv6
    address too) from a thread of its own."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]

    class Server(_Server):
        address_family = family

    server = make_server(str(address[0]), port, metrics_app(registry_of), Server, _Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


def serve_metrics(source: Source, listen: tuple[str, int] | None) -> MetricsServer | None:
    """Serve ``/metrics`` on ``listen`` (None: off). A port that cannot be had is logged and
    leaves ctrd without metrics rather than its containers without a supervisor."""
    if listen is None:
        return None
    host, port = listen
    try:
        server = start_server(lambda: make_registry(ForkSafe.of(source)), host, port)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%d: %s; serving no metrics", host, port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", host, server.port)
    return server
