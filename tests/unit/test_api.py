"""The HTTP/JSON API against an in-memory backend: every route, its status codes and error shape.

The server runs as ctrd runs it (``serve`` on a real Unix socket, plus a TCP listener), on an
event loop in a thread; the test talks plain HTTP to it, as ctrctl and curl do.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from supervisor.api import logs
from supervisor.api.server import Extension, bind, serve
from supervisor.api.tcp import TcpListener
from supervisor.cli.client import UnixConnection
from supervisor.config.errors import DefinitionError, DefinitionNotFound, Problem
from supervisor.daemon import runs
from supervisor.daemon.starts import StartDurations
from supervisor.daemon.view import (
    Conflict,
    ContainerView,
    Histogram,
    ImageStats,
    Invalid,
    NotFound,
    Observed,
)
from supervisor.images.stats import PullStats
from supervisor.model import logs as records
from supervisor.model import resources as limits
from supervisor.model.security import security_json
from supervisor.model.spec import ContainerSpec, Resources, SecuritySpec
from supervisor.model.units import CpuSet


class FakeBackend:
    """ctrd's operations on a dict: containers ``web`` (running) and ``db`` (stopped)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        now = time.time()
        self.views = {
            "web": ContainerView(name="web", definition="web", state="running", pid=4242,
                                 ip="10.88.0.2", restarts=1, started_at=now - 90,
                                 image="busybox", resources={"memory_max": 64 << 20}),
            "db": ContainerView(name="db", definition="db", state="stopped", pid=None, ip=None,
                                restarts=0, started_at=None, exit_code=137, oom_killed=True),
        }
        self.definitions = {"web": '[container]\nimage = "busybox"\n',
                            "db": '[container]\nimage = "debian"\n'}
        self.signals: list[tuple[str, int]] = []
        self.starts: list[tuple[str, bool, list[tuple[str, int]]]] = []  # wait, sockets given
        self.updates: list[tuple[str, Resources]] = []
        self.persisted: list[str] = []
        self.fail_with: Exception | None = None  # raised by every operation when set
        self.gets = 0

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    def _set(self, name: str, **changes: Any) -> ContainerView:
        self.views[name] = replace(self.get(name), **changes)
        return self.views[name]

    def containers(self) -> list[ContainerView]:
        self._check()
        return list(self.views.values())

    def get(self, name: str) -> ContainerView:
        self._check()
        self.gets += 1
        try:
            return self.views[name]
        except KeyError:
            raise NotFound(f"container {name}: not found") from None

    async def start(self, name: str, wait: bool = False,
                    sockets: Sequence[tuple[str, int]] = ()) -> ContainerView:
        # The backend owns the sockets it is given: their names and inodes are kept, they closed.
        self.starts.append((name, wait, [(fdname, os.fstat(fd).st_ino) for fdname, fd in sockets]))
        for _, fd in sockets:
            os.close(fd)
        if self.get(name).state == "failed":
            raise Conflict(f"container {name}: start failed: exec /bin/nope: not found")
        return self._set(name, state="running", pid=5000, started_at=time.time())

    async def stop(self, name: str) -> ContainerView:
        return self._set(name, state="stopped", pid=None, exit_code=0)

    async def restart(self, name: str) -> ContainerView:
        return self._set(name, state="running", restarts=self.get(name).restarts + 1)

    async def kill(self, name: str, signal: int) -> ContainerView:
        self.signals.append((name, signal))
        return self.get(name)

    async def freeze(self, name: str) -> ContainerView:
        if self.get(name).state != "running":
            raise Conflict(f"container {name}: not running")
        return self._set(name, frozen=True)

    async def thaw(self, name: str) -> ContainerView:
        return self._set(name, frozen=False)

    async def update(self, name: str, resources: Resources,
                     persist: bool = False) -> ContainerView:
        self.updates.append((name, resources))
        self.persisted += [name] if persist else []
        current = limits.parse(self.get(name).resources)
        return self._set(name, resources=limits.to_json(current.merged(resources)))

    async def launch(self, definition: str, name: str | None = None) -> ContainerView:
        self._check()
        if definition not in self.definitions:
            raise NotFound(f"definition {definition}: not found")
        name = name or f"{definition}-1"
        if name in self.views:
            raise Conflict(f"container {name}: exists already")
        self.views[name] = ContainerView(name=name, definition=definition, state="running",
                                         pid=6000, ip=None, restarts=0, started_at=time.time())
        return self.views[name]

    async def launch_spec(self, spec: ContainerSpec, definition: str,
                          name: str | None = None) -> ContainerView:
        raise NotImplementedError("no route launches a spec")

    def add_spec_source(self, source: Callable[[str], ContainerSpec | None]) -> None:
        raise NotImplementedError("no route adds a spec source")

    async def run(self, options: dict[str, Any], stdio: Sequence[int] = ()) -> ContainerView:
        # Read as ctrd reads a run (daemon.runs); then a "container" that writes its command
        # into the stdout sent and ends with status 3; the descriptors closed, as ctrd's are.
        self._check()
        try:
            spec = runs.read(options, "10.88.0.0/16").spec
            if stdio:
                os.write(stdio[1], " ".join(spec.command or ()).encode() + b"\n")
        finally:
            for fd in stdio:
                os.close(fd)
        self.views[spec.name] = ContainerView(
            name=spec.name, definition="", state="exited", pid=None, ip=None, restarts=0,
            started_at=time.time(), image=spec.image, exit_code=3)
        return self.views[spec.name]

    async def wait(self, name: str) -> ContainerView:
        return self.get(name)

    def observe(self) -> list[Observed]:
        return []

    def image_stats(self) -> ImageStats:
        return ImageStats(0, PullStats().counts())

    def start_durations(self) -> Histogram:
        return StartDurations().histogram()

    async def remove(self, name: str) -> None:
        self.get(name)
        del self.views[name]

    async def remove_all(self) -> None:
        self._check()
        self.views.clear()

    def log_path(self, name: str) -> Path:
        self.get(name)
        return self.log_dir / f"{name}.log"

    def definition_names(self) -> list[str]:
        self._check()
        return sorted(self.definitions)

    def definition_text(self, name: str) -> str:
        self._check()
        try:
            return f"# /etc/ctr/{name}.toml\n{self.definitions[name]}"
        except KeyError:
            raise DefinitionNotFound(None, None, f"no definition {name}") from None

    async def put_definition(self, name: str, text: str) -> None:
        self._check()
        if "bogus" in text:
            source = Path(f"/etc/ctr/{name}.toml")
            raise DefinitionError.of([Problem(source, "container.bogus", "unknown key"),
                                      Problem(source, "container.image", "missing")])
        self.definitions[name] = text

    async def reload(self) -> list[str]:
        self._check()
        return ["web"]

    def exec_info(self, name: str) -> dict[str, Any]:
        view = self.get(name)
        if view.state != "running":
            raise Conflict(f"container {name}: not running")
        return {"pid": view.pid, "user": "root", "environment": {"PORT": "8080"},
                "working_dir": "/", "privileged": False,
                "security": security_json(SecuritySpec(capabilities_add=("CAP_NET_ADMIN",)))}


@contextmanager
def served(backend: FakeBackend, socket_path: Path, tcp: TcpListener | None = None,
           extensions: Sequence[Extension] = ()) -> Iterator[web.AppRunner]:
    """``serve()`` on an event loop of its own thread, as ctrd runs it; stopped afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        runner = asyncio.run_coroutine_threadsafe(
            serve(backend, bind(socket_path, tcp), tcp, extensions), loop).result(10)
        try:
            yield runner
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        assert self.headers.get_content_type() == "application/json"
        return json.loads(self.body)


@dataclass
class Api:
    backend: FakeBackend
    socket: Path
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                connection: http.client.HTTPConnection | None = None) -> Response:
        conn = connection or UnixConnection(self.socket)
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=self.headers)
        response = conn.getresponse()
        result = Response(response.status, response.headers, response.read())
        conn.close()
        return result

    def error(self, method: str, path: str, status: int, body: Any = None,
              raw: bytes | None = None) -> dict[str, Any]:
        """The JSON error of a request that must fail with ``status``."""
        response = self.request(method, path, body, raw)
        assert response.status == status, response.body
        error: dict[str, Any] = response.json
        assert set(error) == {"error", "detail"} and isinstance(error["error"], str)
        assert "Traceback" not in response.body.decode()
        return error


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock"):
        yield Api(backend, tmp_path / "ctrd.sock")


# -- containers -----------------------------------------------------------------------------------

def test_list_gives_every_container_with_all_its_fields(api: Api) -> None:
    response = api.request("GET", "/v1/containers")
    assert response.status == 200
    by_name = {c["name"]: c for c in response.json}
    assert set(by_name) == {"web", "db"}
    assert by_name["web"] == api.backend.views["web"].to_dict()
    assert by_name["db"]["pid"] is None and by_name["db"]["oom_killed"] is True


def test_get_one_container_or_404(api: Api) -> None:
    response = api.request("GET", "/v1/containers/web")
    assert response.status == 200 and response.json["pid"] == 4242
    error = api.error("GET", "/v1/containers/nope", 404)
    assert error == {"error": "container nope: not found", "detail": None}


@pytest.mark.parametrize(("action", "name", "field", "value"), [
    ("start", "db", "state", "running"),
    ("stop", "web", "state", "stopped"),
    ("restart", "web", "restarts", 2),
    ("freeze", "web", "frozen", True),
    ("thaw", "web", "frozen", False),
])
def test_actions_answer_with_the_new_view(api: Api, action: str, name: str, field: str,
                                          value: object) -> None:
    response = api.request("POST", f"/v1/containers/{name}/{action}")
    assert response.status == 200
    assert response.json[field] == value
    assert api.request("GET", f"/v1/containers/{name}").json[field] == value


def test_action_on_unknown_container_is_404_and_bad_state_is_409(api: Api) -> None:
    assert api.error("POST", "/v1/containers/nope/start", 404)["error"] == \
        "container nope: not found"
    assert api.error("POST", "/v1/containers/db/freeze", 409)["error"] == \
        "container db: not running"


@pytest.mark.parametrize(("body", "signum"), [
    (None, 9), ({}, 9), ({"signal": "TERM"}, 15), ({"signal": "SIGTERM"}, 15),
    ({"signal": "sighup"}, 1), ({"signal": 15}, 15), ({"signal": "10"}, 10),
])
def test_kill_takes_a_signal_name_or_number_default_kill(api: Api, body: Any,
                                                         signum: int) -> None:
    assert api.request("POST", "/v1/containers/web/kill", body).status == 200
    assert api.backend.signals == [("web", signum)]


@pytest.mark.parametrize("body", [{"signal": "NOPE"}, {"signal": 0}, {"signal": True},
                                  {"signal": 9999}, {"signal": None}])
def test_kill_with_a_bad_signal_is_400_naming_it(api: Api, body: Any) -> None:
    error = api.error("POST", "/v1/containers/web/kill", 400, body)
    assert error["error"].startswith("signal: not a signal")
    assert error["detail"] == {"key": "signal"}
    assert api.backend.signals == []


def test_update_parses_the_limits_as_a_definition_writes_them(api: Api) -> None:
    body = {"memory_max": "256M", "cpu_quota": "50%", "cpu_weight": 100, "cpuset_cpus": "0",
            "pids_max": 64}
    response = api.request("PATCH", "/v1/containers/web/resources", body)
    assert response.status == 200
    assert api.backend.updates == [("web", Resources(memory_max=256 << 20, cpu_quota=0.5,
                                                     cpu_weight=100, cpuset_cpus=CpuSet.of("0"),
                                                     pids_max=64))]
    assert response.json["resources"]["memory_max"] == 256 << 20


def test_update_of_one_limit_leaves_the_others(api: Api) -> None:
    assert api.request("PATCH", "/v1/containers/web/resources", {"pids_max": "32"}).status == 200
    assert api.backend.updates == [("web", Resources(pids_max=32))]
    assert api.backend.views["web"].resources["memory_max"] == 64 << 20


@pytest.mark.parametrize(("body", "key"), [
    ({"memory_max": "lots"}, "memory_max"),
    ({"memory_max": -1}, "memory_max"),
    ({"memory_max": None}, "memory_max"),
    ({"cpu_quota": "-5%"}, "cpu_quota"),
    ({"cpu_quota": "fast"}, "cpu_quota"),
    ({"cpu_weight": 0}, "cpu_weight"),
    ({"cpu_weight": 10001}, "cpu_weight"),
    ({"cpu_weight": 1.5}, "cpu_weight"),
    ({"cpuset_cpus": "a-b"}, "cpuset_cpus"),
    ({"cpuset_cpus": 0}, "cpuset_cpus"),
    ({"pids_max": "x"}, "pids_max"),
    ({"pids_max": 64, "memory": "1G"}, "memory"),
    # each once took ctrd down (a range expanded into a set of 10**11 CPUs) or was written
    ({"cpuset_cpus": "0-99999999999"}, "cpuset_cpus"),
    ({"cpuset_cpus": "0-4000"}, "cpuset_cpus"),
    ({"cpu_quota": "1e308%"}, "cpu_quota"),
    ({"cpu_quota": "1e309%"}, "cpu_quota"),
    ({"cpu_quota": "nan%"}, "cpu_quota"),
    ({"cpu_quota": "1000000%"}, "cpu_quota"),
])
def test_update_with_a_bad_value_is_400_naming_the_key(api: Api, body: Any, key: str) -> None:
    error = api.error("PATCH", "/v1/containers/web/resources", 400, body)
    assert error["error"].startswith(f"{key}: ")
    assert error["detail"] == {"key": key}
    assert api.backend.updates == []


@pytest.mark.parametrize("raw", [b"{}", b"", b"not json", b"[1, 2]", b'"256M"'])
def test_update_without_a_json_object_of_limits_is_400(api: Api, raw: bytes) -> None:
    api.error("PATCH", "/v1/containers/web/resources", 400, raw=raw)
    assert api.backend.updates == []


@pytest.mark.parametrize(("headers", "raw", "reason"), [
    ({"Content-Type": "application/json; charset=ebcdic"}, b'{"pids_max": 5}',
     "must be UTF-8, not charset 'ebcdic'"),
    ({}, b'{"pids_max": "\xff"}', "not UTF-8"),
    ({}, b"[" * 100000 + b"]" * 100000, "nests too deeply"),
])
def test_a_body_ctrd_cannot_read_is_400(api: Api, headers: dict[str, str], raw: bytes,
                                        reason: str) -> None:
    conn = UnixConnection(api.socket)
    conn.request("PATCH", "/v1/containers/web/resources", body=raw, headers=headers)
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 400 and reason in body["error"], body
    assert api.backend.updates == []


def test_a_malformed_request_logs_one_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for raw in (b"GARBAGE / HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"):
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(api.socket))
            client.sendall(raw)
            assert client.recv(100).startswith(b"HTTP/1.0 400")
    time.sleep(0.1)  # the server logs after it answered
    lines = [record for record in caplog.records if record.name.startswith("aiohttp")]
    assert len(lines) == 2, [r.getMessage() for r in lines]
    assert all(r.levelname == "WARNING" and r.exc_info is None for r in lines)
    assert [r.getMessage() for r in lines] == [
        "malformed request: Invalid method encountered",
        "malformed request: Invalid character in Content-Length"]


def test_launch_an_instance_of_a_definition(api: Api) -> None:
    response = api.request("POST", "/v1/containers", {"definition": "web"})
    assert response.status == 201
    assert (response.json["name"], response.json["definition"]) == ("web-1", "web")
    named = api.request("POST", "/v1/containers", {"definition": "web", "name": "web-blue"})
    assert named.status == 201 and named.json["name"] == "web-blue"
    assert api.error("POST", "/v1/containers", 409, {"definition": "web", "name": "web-blue"})
    assert api.error("POST", "/v1/containers", 404, {"definition": "nope"})
    assert api.error("POST", "/v1/containers", 400, {})["detail"] == {"key": "definition"}
    assert api.error("POST", "/v1/containers", 400,
                     {"definition": "web", "nmae": "x"})["detail"] == {"key": "nmae"}


def test_delete_one_then_all(api: Api) -> None:
    assert api.request("DELETE", "/v1/containers/web").status == 204
    api.error("GET", "/v1/containers/web", 404)
    api.error("DELETE", "/v1/containers/web", 404)
    assert api.request("DELETE", "/v1/containers").status == 204
    assert api.request("GET", "/v1/containers").json == []


def test_exec_info(api: Api) -> None:
    assert api.request("GET", "/v1/containers/web/exec").json == {
        "pid": 4242, "user": "root", "environment": {"PORT": "8080"}, "working_dir": "/",
        "privileged": False,
        "security": security_json(SecuritySpec(capabilities_add=("CAP_NET_ADMIN",)))}
    api.error("GET", "/v1/containers/db/exec", 409)


# -- definitions ----------------------------------------------------------------------------------

def test_definitions_list_text_and_store(api: Api) -> None:
    assert api.request("GET", "/v1/definitions").json == ["db", "web"]
    text = api.request("GET", "/v1/definitions/web")
    assert text.status == 200 and text.headers.get_content_type() == "text/plain"
    assert text.body.decode() == '# /etc/ctr/web.toml\n[container]\nimage = "busybox"\n'
    api.error("GET", "/v1/definitions/nope", 404)
    toml = '[container]\nimage = "alpine"\n'
    assert api.request("PUT", "/v1/definitions/cache", raw=toml.encode()).status == 204
    assert api.request("GET", "/v1/definitions/cache").body.decode().endswith(toml)


def test_storing_an_invalid_definition_is_400_with_every_problem(api: Api) -> None:
    error = api.error("PUT", "/v1/definitions/bad", 400, raw=b"[container]\nbogus = 1\n")
    assert error["error"] == ("/etc/ctr/bad.toml: container.bogus: unknown key\n"
                              "/etc/ctr/bad.toml: container.image: missing")
    assert error["detail"] == {"problems": [
        {"source": "/etc/ctr/bad.toml", "key": "container.bogus", "reason": "unknown key"},
        {"source": "/etc/ctr/bad.toml", "key": "container.image", "reason": "missing"}]}
    assert "bad" not in api.backend.definitions


def test_reload_names_what_changed(api: Api) -> None:
    response = api.request("POST", "/v1/reload")
    assert response.status == 200 and response.json == {"changed": ["web"]}


# -- errors ---------------------------------------------------------------------------------------

def test_unknown_route_is_404_json(api: Api) -> None:
    error = api.error("GET", "/v1/nothing", 404)
    assert error == {"error": "not found", "detail": {"method": "GET", "path": "/v1/nothing"}}
    api.error("POST", "/v1/containers/web/explode", 404)


def test_wrong_method_is_405_json_with_allow(api: Api) -> None:
    response = api.request("PUT", "/v1/containers/web")
    assert response.status == 405
    assert response.json["error"] == "method not allowed"
    assert "GET" in response.json["detail"]["allowed"]
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(("exc", "status"), [
    (Invalid("container web: bad"), 400),
    (ValueError("bad value"), 400),
    (DefinitionNotFound(None, None, "no definition x"), 404),
    (NotFound("gone"), 404),
    (Conflict("busy"), 409),
])
def test_backend_errors_map_to_their_status(api: Api, exc: Exception, status: int) -> None:
    api.backend.fail_with = exc
    assert api.error("GET", "/v1/containers", status)["error"] == str(exc)


def test_an_unexpected_exception_is_500_with_the_message_and_no_traceback(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    api.backend.fail_with = KeyError("the disk caught fire")
    with caplog.at_level(logging.ERROR, logger="supervisor.api.errors"):
        error = api.error("POST", "/v1/reload", 500)
    assert error == {"error": "'the disk caught fire'", "detail": {"exception": "KeyError"}}
    logged = [r for r in caplog.records if r.name == "supervisor.api.errors"]
    assert logged and logged[0].exc_info is not None  # the traceback stays in ctrd's log
    assert "POST /v1/reload" in logged[0].getMessage()


# -- listening ------------------------------------------------------------------------------------

def test_socket_is_mode_0660_owned_by_us_and_removed_at_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ctrd.sock"
    with served(FakeBackend(tmp_path), path):
        info = path.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_uid == os.geteuid()
    assert not path.exists()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "ctrd.sock"
    with socket.socket(socket.AF_UNIX) as old:  # bound by a ctrd that died: nobody listens
        old.bind(str(path))
    with served(FakeBackend(tmp_path), path):
        assert Api(FakeBackend(tmp_path), path).request("GET", "/v1/containers").status == 200


def test_a_live_socket_or_another_file_is_not_taken_over(tmp_path: Path, api: Api) -> None:
    with pytest.raises(FileExistsError, match="another server is listening"), \
            served(FakeBackend(tmp_path), api.socket):
        pass
    assert api.request("GET", "/v1/containers").status == 200  # the first one still serves
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    with pytest.raises(FileExistsError, match="not a socket"), served(FakeBackend(tmp_path), other):
        pass
    assert other.read_text() == "keep me"


TOKEN = "a-token-for-the-tests-0123456789"


def tcp_address(runner: web.AppRunner) -> tuple[str, int]:
    host, port = next(a for a in runner.addresses if isinstance(a, tuple))[:2]
    return host, port


def test_tcp_listener_serves_the_same_routes_with_the_token(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock", TcpListener("127.0.0.1", 0, TOKEN)) as runner:
        host, port = tcp_address(runner)
        assert host == "127.0.0.1" and port > 0
        api = Api(backend, tmp_path / "ctrd.sock", {"Authorization": f"Bearer {TOKEN}"})
        tcp = api.request("GET", "/v1/containers/web",
                          connection=http.client.HTTPConnection(host, port, timeout=5))
        assert tcp.status == 200 and tcp.json == backend.views["web"].to_dict()
        assert api.request("POST", "/v1/containers/web/stop",
                           connection=http.client.HTTPConnection(host, port)).status == 200
        assert api.request("GET", "/v1/containers/web").json["state"] == "stopped"


# -- logs -----------------------------------------------------------------------------------------

def test_logs_whole_file_or_its_tail(api: Api) -> None:
    (api.backend.log_dir / "web.log").write_text("one\ntwo\nthree\n")
    whole = api.request("GET", "/v1/containers/web/logs")
    assert whole.status == 200 and whole.headers.get_content_type() == "text/plain"
    assert whole.body == b"one\ntwo\nthree\n"
    assert api.request("GET", "/v1/containers/web/logs?tail=2").body == b"two\nthree\n"
    assert api.request("GET", "/v1/containers/web/logs?tail=0").body == b""
    assert api.request("GET", "/v1/containers/db/logs").body == b""  # no output yet
    api.error("GET", "/v1/containers/nope/logs", 404)
    assert api.error("GET", "/v1/containers/web/logs?tail=-1", 400)["detail"] == {"key": "tail"}
    assert api.error("GET", "/v1/containers/web/logs?follow=maybe", 400)["detail"] == \
        {"key": "follow"}


def test_logs_by_time_by_run_with_timestamps(api: Api) -> None:
    """The query's selections, as ``ctrctl logs`` sends them (supervisor.daemon.logfiles reads
    the files: tests/unit/test_logfiles.py)."""
    stamps = [records.stamp(n * 10**9) for n in (1000, 2000, 3000)]
    (api.backend.log_dir / "web.log").write_bytes(
        records.run_mark(stamps[0]) + records.record("stdout", b"old", stamps[0])
        + records.run_mark(stamps[1]) + records.record("stderr", b"new", stamps[1])
        + records.record("stdout", b"newer", stamps[2]))

    def body(query: str) -> bytes:
        return api.request("GET", f"/v1/containers/web/logs?{query}").body

    assert body("") == b"old\nnew\nnewer\n"
    assert body("since=2000") == body("since=1970-01-01T00:33:20Z") == b"new\nnewer\n"
    assert body("until=2000.000000001&since=1500") == b"new\n"
    assert body("timestamps=1&tail=1") == stamps[2] + b" newer\n"
    assert body("previous=1") == b"old\n"
    assert body("previous=1&follow=1") == b"old\n"  # that run is over: nothing to follow
    assert api.error("GET", "/v1/containers/web/logs?since=soon", 400) == {
        "error": "since: not a time: 'soon' (use e.g. 2026-12-01T10:00:00Z, 2026-12-01 10:00, "
                 "1764583200 or 10m for ten minutes ago)", "detail": {"key": "since"}}
    assert api.error("GET", "/v1/containers/web/logs?previous=maybe", 400)["detail"] == \
        {"key": "previous"}


class Follower:
    """A ``logs?follow=1`` request whose output is read as it arrives."""

    def __init__(self, api: Api, query: str) -> None:
        self.connection = UnixConnection(api.socket)
        self.connection.request("GET", f"/v1/containers/web/logs?{query}")
        self.response = self.connection.getresponse()
        assert self.response.status == 200

    def read_until(self, wanted: bytes, timeout: float = 5) -> bytes:
        data = b""
        self.connection.sock.settimeout(timeout)
        while wanted not in data:
            chunk = self.response.read1(65536)
            assert chunk, f"stream ended before {wanted!r}; got {data!r}"
            data += chunk
        return data


def test_follow_streams_appended_output_until_the_container_stops(api: Api) -> None:
    log = api.backend.log_dir / "web.log"
    log.write_text("old 1\nold 2\n")
    follower = Follower(api, "follow=1&tail=1")
    assert follower.read_until(b"old 2\n") == b"old 2\n"
    with log.open("a") as f:
        f.write("new 1\n")
        f.flush()
        assert follower.read_until(b"new 1\n") == b"new 1\n"
        f.write("last words\n")
    api.backend.views["web"] = replace(api.backend.views["web"], state="exited")
    assert follower.response.read() == b"last words\n"  # everything, then the end of the stream
    follower.connection.close()


def test_follow_ends_when_the_client_goes_away(api: Api) -> None:
    follower = Follower(api, "follow=1")
    time.sleep(3 * logs.POLL)
    follower.connection.close()
    time.sleep(3 * logs.POLL)
    polls = api.backend.gets
    time.sleep(5 * logs.POLL)
    assert api.backend.gets == polls  # nobody is looking at the container any more


def test_follow_does_not_hold_up_shutdown(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock"):
        follower = Follower(Api(backend, tmp_path / "ctrd.sock"), "follow=1")
        started = time.monotonic()
    assert time.monotonic() - started < 2
    assert follower.response.read() == b""
    follower.connection.close()
