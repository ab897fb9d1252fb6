"""``GET /v1/sd/prometheus`` against an in-memory backend: what Prometheus's http_sd_configs
reads, ctrd's target first, then each running container that declares [metrics] port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.api import sd
from supervisor.daemon.states import State
from supervisor.daemon.view import Observed
from supervisor.model.spec import MetricsSpec
from tests.unit.test_api import Api, FakeBackend, served


class Exporters(FakeBackend):
    """Three containers with an exporter (one on the host's network), one without, one stopped."""

    def observe(self) -> list[Observed]:
        running = State.RUNNING.value
        return [
            Observed("web", running, "web", "busybox", address="10.88.0.2",
                     metrics=MetricsSpec(port=9100)),
            Observed("app-1", running, "app", "busybox", address="10.88.0.3",
                     metrics=MetricsSpec(port=8080, path="/stats")),
            Observed("node", running, "node", "busybox", address=None,
                     metrics=MetricsSpec(port=9101)),
            Observed("db", running, "db", "busybox", address="10.88.0.4",
                     metrics=MetricsSpec()),
            Observed("old", State.EXITED.value, "old", "busybox"),
        ]


def sd_api(tmp_path: Path, listen: tuple[str, int] | None) -> Iterator[Api]:
    backend = Exporters(tmp_path)
    with served(backend, tmp_path / "ctrd.sock", extensions=[sd.advertise(listen)]):
        yield Api(backend, tmp_path / "ctrd.sock", headers={"Host": "node7.example:1234"})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from sd_api(tmp_path, ("127.0.0.1", 9838))


def targets(api: Api) -> list[dict[str, Any]]:
    response = api.request("GET", "/v1/sd/prometheus")
    assert response.status == 200
    answer: list[dict[str, Any]] = response.json
    return answer


def test_ctrd_first_then_every_running_exporter(api: Api) -> None:
    assert targets(api) == [
        {"targets": ["127.0.0.1:9838"], "labels": {}},
        {"targets": ["10.88.0.2:9100"], "labels": {"name": "web", "definition": "web"}},
        {"targets": ["10.88.0.3:8080"], "labels": {"name": "app-1", "definition": "app",
                                                   "__metrics_path__": "/stats"}},
        # on the host's network: at the host the request was addressed to
        {"targets": ["node7.example:9101"], "labels": {"name": "node", "definition": "node"}},
    ]


@pytest.mark.parametrize(("listen", "target"), [
    (("0.0.0.0", 9838), "node7.example:9838"),  # every address: the one Prometheus used
    (("::", 9838), "node7.example:9838"),
    (("::1", 9838), "[::1]:9838"),
    (("10.1.2.3", 9000), "10.1.2.3:9000"),
])
def test_ctrds_own_target(tmp_path: Path, listen: tuple[str, int], target: str) -> None:
    for api in sd_api(tmp_path, listen):
        assert targets(api)[0] == {"targets": [target], "labels": {}}


def test_no_ctrd_target_when_its_metrics_are_off(tmp_path: Path) -> None:
    for api in sd_api(tmp_path, None):
        assert [t["labels"].get("name") for t in targets(api)] == ["web", "app-1", "node"]


def test_the_route_is_in_the_openapi_document(api: Api) -> None:
    document = api.request("GET", "/v1/openapi.json").json
    operation = document["paths"]["/v1/sd/prometheus"]["get"]
    assert operation["summary"].startswith("Scrape targets for Prometheus's http_sd_configs")
