"""``GET /v1/openapi.json``: a valid OpenAPI 3 document of exactly the routes the application
serves, with the limits of the model and the fields of the view."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from schemathesis.core.result import Ok

from supervisor.api import openapi
from supervisor.api.auth import add_open_routes
from supervisor.api.server import make_app
from supervisor.daemon.view import ContainerView
from supervisor.graders import routes as graders_routes
from supervisor.model import resources as limits
from tests.unit.test_api import Api, FakeBackend, served


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    """The application as ctrd makes it, the graders' routes plugged in."""
    return make_app(FakeBackend(tmp_path), [partial(add_open_routes, table=graders_routes.routes)])


def document(app: web.Application) -> dict[str, Any]:
    return app[openapi.DOCUMENT]


def registered(app: web.Application) -> set[tuple[str, str]]:
    return {(route.method, route.resource.canonical) for route in app.router.routes()
            if route.resource is not None}


def described(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


def test_every_route_of_v1_is_described_and_nothing_else(app: web.Application) -> None:
    routes = registered(app)
    v1 = {(method, path) for method, path in routes if path.startswith("/v1/")}
    assert described(document(app)) == {(m, p) for m, p in v1 if m != "HEAD"}
    # HEAD is only aiohttp's twin of a GET; the graders' routes are not ctrd's API
    assert {p for m, p in v1 if m == "HEAD"} <= {p for m, p in v1 if m == "GET"}
    assert ("POST", "/launch") in routes and not any(
        path.startswith("/launch") for path in document(app)["paths"])
    assert len(v1 - {(m, p) for m, p in v1 if m == "HEAD"}) == 19


def test_the_document_is_valid_openapi_and_schemathesis_finds_every_operation(
        app: web.Application) -> None:
    schema = schemathesis.openapi.from_dict(document(app))
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()
                  if isinstance(result, Ok)]
    assert {(op.method.upper(), op.path) for op in operations} == described(document(app))


def test_every_operation_says_what_it_does_and_answers(app: web.Application) -> None:
    for path, item in document(app)["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            statuses = set(operation["responses"])
            assert {"401", "default"} <= statuses and any(s < "300" for s in statuses)
            errors = [r for s, r in operation["responses"].items() if s >= "400"]
            assert all(r["content"]["application/json"]["schema"] == openapi.ERROR
                       for r in errors), (method, path)


def test_the_limits_are_those_of_the_model(app: web.Application) -> None:
    patch = document(app)["paths"]["/v1/containers/{name}/resources"]["patch"]
    body = patch["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == [limit.name for limit in limits.FIELDS]
    assert all(body["properties"][limit.name]["description"] == limit.help
               for limit in limits.FIELDS)
    assert body["additionalProperties"] is False
    assert [p["name"] for p in patch["parameters"]] == ["name", "persist"]


def test_the_view_has_every_field_of_container_view(app: web.Application) -> None:
    view = document(app)["components"]["schemas"]["ContainerView"]
    names = [field.name for field in dataclasses.fields(ContainerView)]
    assert list(view["properties"]) == names and view["required"] == names
    assert view["properties"]["pid"] == {"type": "integer", "nullable": True}
    assert view["properties"]["restarts"] == {"type": "integer"}


def test_the_actions_are_an_enum_of_the_route(app: web.Application) -> None:
    action = next(p for p in document(app)["paths"]["/v1/containers/{name}/{action}"]["post"]
                  ["parameters"] if p["name"] == "action")
    assert action["schema"]["enum"] == ["stop", "restart", "freeze", "thaw"]
    start = document(app)["paths"]["/v1/containers/{name}/start"]["post"]
    body = start["requestBody"]["content"]["application/json"]["schema"]
    assert list(body["properties"]) == ["wait", "sockets"]


def test_a_v1_route_without_a_description_stops_the_app(tmp_path: Path) -> None:
    table = web.RouteTableDef()

    @table.get("/v1/undescribed")
    async def undescribed(request: web.Request) -> web.Response:
        return web.Response()

    def extend(app: web.Application) -> None:
        app.add_routes(table)

    with pytest.raises(LookupError, match="GET /v1/undescribed: no OpenAPI description"):
        make_app(FakeBackend(tmp_path), [extend])


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock"):
        yield Api(backend, tmp_path / "ctrd.sock")


def test_the_server_serves_its_document(api: Api, app: web.Application) -> None:
    response = api.request("GET", "/v1/openapi.json")
    assert response.status == 200
    assert response.json["openapi"].startswith("3.")
    assert described(response.json) == described(document(app))
