"""``GET /v1/sd/prometheus``: Prometheus's HTTP service discovery (``http_sd_configs``), so one
scrape configuration per host finds ctrd's metrics and every container's own exporter.

The answer is the list ``http_sd_configs`` reads: ``[{"targets": ["HOST:PORT"], "labels":
{...}}]``. ctrd's own target comes first, without labels of its own (its series carry ``name``
already: a target label ``name`` would rename theirs to ``exported_name``). Then every running
container that declares ``[metrics] port``, at its address (a container on the host's network:
the host's), with labels ``name`` and ``definition``, and ``__metrics_path__`` when it serves
elsewhere than ``/metrics``. Where ctrd's metrics listen on every address (``0.0.0.0``, ``::``),
the host is the one the request was made to, as that is how Prometheus reaches this machine.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from supervisor.api.context import backend
from supervisor.api.openapi import json_body, operation
from supervisor.daemon.states import State
from supervisor.daemon.view import Observed
from supervisor.model.spec import MetricsSpec

routes = web.RouteTableDef()
# Where ctrd serves /metrics: (host, port); unset when it serves none (metrics_listen = "off").
METRICS = web.AppKey("metrics_listen", tuple)
DEFAULT_PATH = MetricsSpec().path
_WILDCARDS = ("", "0.0.0.0", "::")

TARGETS = json_body({
    "type": "array",
    "items": {"type": "object", "required": ["targets", "labels"], "properties": {
        "targets": {"type": "array", "items": {"type": "string"},
                    "description": "HOST:PORT to scrape"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "name and definition of a container's target; "
                   "__metrics_path__ where it is not /metrics"}}},
})


def advertise(listen: tuple[str, int] | None) -> Callable[[web.Application], None]:
    """The extension that tells the route where ctrd's metrics are (None: nowhere)."""
    def install(app: web.Application) -> None:
        if listen is not None:
            app[METRICS] = listen
    return install


def address(host: str, port: int) -> str:
    """``HOST:PORT``, an IPv6 address in brackets."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:  # a name
        is_v6 = False
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


def _this_host(request: web.Request) -> str:
    """The host the request was addressed to (its Host header), else this machine's name."""
    host = request.url.host if request.headers.get("Host") else None
    return host or socket.gethostname()


def _container(seen: Observed, host: str) -> dict[str, Any] | None:
    metrics = seen.metrics
    if seen.state != State.RUNNING.value or metrics is None or metrics.port is None:
        return None
    labels = {"name": seen.name, "definition": seen.definition}
    if metrics.path != DEFAULT_PATH:
        labels["__metrics_path__"] = metrics.path
    return {"targets": [address(seen.address or host, metrics.port)], "labels": labels}


@routes.get("/v1/sd/prometheus")
@operation(TARGETS)
async def prometheus(request: web.Request) -> web.Response:
    """Scrape targets for Prometheus's http_sd_configs: ctrd's metrics and the containers'.

    ctrd's own target first (none when its metrics are off), then every running container that
    declares `[metrics] port`, with labels `name` and `definition`."""
    host = _this_host(request)
    targets = []
    listen = request.app.get(METRICS)
    if listen is not None:
        listen_host, port = listen
        targets.append({"targets": [address(host if listen_host in _WILDCARDS else listen_host,
                                            port)], "labels": {}})
    targets += [target for seen in backend(request).observe()
                if (target := _container(seen, host)) is not None]
    return web.json_response(targets)
