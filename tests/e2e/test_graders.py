"""The course graders' interface: their JSON configurations, REST routes and CLI verbs.

The end-to-end test plays the graders' sequence against a ctrd of its own that listens on TCP
127.0.0.1, with instances serving on 127.0.0.1:18080-18082 (host network: busybox httpd binds
every address, we only ever connect to loopback).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Daemon, Env
from tests.graders_fixtures import build_base_image, build_html_tarball

PORTS = (18080, 18081, 18082)

EXAMPLE = {
    "name": "sensiblename", "major": "1", "minor": "01", "base_image": "basefs.tar.gz",
    "mounts": ["webserver.tar /webserver/ READ", "homedir.tar /webserver/home READWRITE"],
    "startup_script": "/webserver/tiny.sh", "startup_owner": "root",
    "startup_env": "PORT=8080;LD_LIBRARY_PATH=${LD_LIBRARY_PATH}:/var/lib64",
}


# -- end to end ------------------------------------------------------------------------------------

@dataclass
class Api:
    """The graders' side: plain HTTP to ctrd's TCP listener."""

    port: int

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        status, data = _http(self.port, method, path, body)
        assert status is not None, f"ctrd does not answer on {self.port}"
        return status, data

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.call(method, path, None if body is None else json.dumps(body).encode())
        assert status == 200, (method, path, status, data)
        return json.loads(data)

    def instances(self) -> list[dict[str, str]]:
        listing: dict[str, list[dict[str, str]]] = self.json("GET", "/list")
        assert list(listing) == ["instances"]
        return listing["instances"]


def _http(port: int, method: str, path: str, body: bytes | None = None,
          timeout: float = 60) -> tuple[int | None, bytes]:
    """Status and body, or (None, b"") if nothing listens on 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return None, b""
    finally:
        connection.close()


def page(port: int, path: str) -> str | None:
    """The text at ``path`` of the instance serving on ``port``, None if nothing serves."""
    status, data = _http(port, "GET", path, timeout=10)
    assert status in (None, 200), (port, path, status, data)
    return None if status is None else data.decode()


def wait_page(port: int, path: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while (text := page(port, path)) is None:
        assert time.monotonic() < deadline, f"nothing serves on port {port}"
        time.sleep(0.05)
    return text


def wait_closed(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while page(port, "/index.html") is not None:
        assert time.monotonic() < deadline, f"port {port} still serves"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def web_config(minor: str, port: int, *modes: str) -> dict[str, str | list[str]]:
    """A web server on ``port`` serving potato.html through the first mount and tomato.html
    through the second, nested in it."""
    outer, inner = modes or ("READWRITE", "READ")
    return {"name": "web", "major": "1", "minor": minor, "base_image": "basefs.tar.gz",
            "mounts": [f"potato.tar /webserver/potato/ {outer}",
                       f"tomato.tar /webserver/potato/tomato {inner}"],
            "startup_script": "/webserver/tiny.sh", "startup_owner": "root",
            "startup_env": f"PORT={port}; LD_LIBRARY_PATH=${{LD_LIBRARY_PATH}}:/var/lib64"}


@pytest.fixture
def api(ctrd: Daemon, env: Env, busybox_image: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """A fresh ctrd listening on TCP 127.0.0.1 too, with the graders' tarballs in its images."""
    for port in PORTS:
        assert _http(port, "GET", "/")[0] is None, f"port {port} is in use on this host"
    images = env.data / "images"
    build_base_image(busybox_image, tmp_path, images / "basefs.tar.gz")
    for directory in ("potato", "tomato"):
        build_html_tarball(images / f"{directory}.tar", directory)
    port = free_port()
    monkeypatch.setenv("CTR_API_LISTEN", f"127.0.0.1:{port}")  # as --api-listen
    ctrd.start()
    yield Api(port)
    _http(port, "DELETE", "/destroyall")  # the ctrd fixture then stops ctrd and checks the rest


def test_graders_sequence(api: Api, ctrd: Daemon, env: Env) -> None:
    assert api.json("GET", "/cfginfo") == {"files": []}
    assert api.json("GET", "/list") == {"instances": []}

    # Configurations: stored once, 409 with an empty body for anything else.
    assert api.call("POST", "/config", b"{not json") == (409, b"")
    missing_major = {k: v for k, v in web_config("0", PORTS[0]).items() if k != "major"}
    assert api.call("POST", "/config", json.dumps(missing_major).encode()) == (409, b"")
    configs = [web_config("0", PORTS[0]), web_config("1", PORTS[1], "rw", "ro"),
               web_config("2", PORTS[2], "ReadWrite", "read")]
    for config in configs:
        assert api.call("POST", "/config", json.dumps(config).encode()) == (200, b"")
    assert api.call("POST", "/config/", json.dumps(configs[0]).encode()) == (409, b"")
    files = ["web-1-0.cfg", "web-1-1.cfg", "web-1-2.cfg"]
    assert api.json("GET", "/cfginfo") == {"files": files}
    assert api.json("GET", "/cfginfo/") == {"files": files}
    stored = env.data / "configs" / "web-1-1.cfg"
    assert json.loads(stored.read_text()) == configs[1]

    # Three launches, two of the same configuration: three instances, listed in launch order
    # (the second web-1-1 finds its port taken and ends, an instance still until destroyed).
    requests = [{"name": "web", "major": "1", "minor": minor} for minor in ("1", "0", "1")]
    launched = []
    for request in requests:
        answer = api.json("POST", "/launch", request)
        assert list(answer) == ["instance", "name", "major", "minor"]
        assert {k: answer[k] for k in request} == request
        launched.append({"instance": answer["instance"], **request})
    assert len({entry["instance"] for entry in launched}) == 3
    assert api.instances() == launched
    shown = {view["name"] for view in json.loads(ctrd.ctl("list", "-o", "json").stdout)}
    assert shown >= {entry["instance"] for entry in launched}  # ordinary containers of ctrd
    unknown = json.dumps({"name": "web", "major": "9", "minor": "9"}).encode()
    assert api.call("POST", "/launch", unknown) == (404, b"")

    assert api.call("DELETE", "/destroy/no-such-instance") == (404, b"")
    assert api.call("DELETE", f"/destroy/{launched[0]['instance']}") == (200, b"")
    assert api.instances() == launched[1:]
    assert ctrd.ctl("status", launched[0]["instance"], check=False).returncode != 0
    assert api.call("DELETE", "/destroyall") == (200, b"")
    assert api.instances() == []

    # Three servers, each on its port, through nested mounts.
    servers = [api.json("POST", "/launch/", {"name": "web", "major": "1", "minor": str(i)})
               for i in range(3)]
    for port in PORTS:
        assert wait_page(port, "/potato/potato.html") == "<p>potato</p>\n"
        assert page(port, "/potato/tomato/tomato.html") == "<p>tomato</p>\n"
        assert (page(port, "/cgi-bin/write") or "").split() == ["rw-ok", "ro-ok"]
    for port in PORTS:  # each READWRITE mount is the instance's own, the shared cache untouched
        assert page(port, "/potato/owner.html") == f"{port}\n"
    assert not list((env.data / "cache").rglob("owner.html"))

    # Own pid namespaces: ps shows the instance's own server only.
    for port in PORTS:
        processes = (page(port, "/cgi-bin/ps") or "").splitlines()[1:]
        assert processes[0].split()[:2] == ["1", "root"] and "tiny.sh" in processes[0]
        httpds = [line for line in processes if "httpd" in line]
        assert httpds and all(f"-p {port} " in line for line in httpds), processes
        assert len(processes) <= 6, processes  # sh, httpd, its worker, the CGI, ps

    # A kill inside one instance stops its server; the other two keep answering.
    assert (page(PORTS[0], "/cgi-bin/kill") or "").startswith("stopping")
    wait_closed(PORTS[0])
    for port in PORTS[1:]:
        assert page(port, "/index.html") == "<p>index</p>\n"
    ctrd.wait_for(servers[0]["instance"], lambda status: status["state"] == "exited")
    assert [entry["instance"] for entry in api.instances()] == [s["instance"] for s in servers]

    assert api.call("DELETE", f"/destroy/{servers[0]['instance']}/") == (200, b"")
    assert api.call("DELETE", "/destroyall/") == (200, b"")
    assert api.instances() == []
    for port in PORTS:
        wait_closed(port)


def test_cli_verbs(api: Api, ctrd: Daemon, tmp_path: Path) -> None:
    config = tmp_path / "web.json"
    config.write_text(json.dumps(web_config("0", PORTS[0]), indent=1))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**web_config("1", PORTS[1]), "major": None}))

    assert ctrd.ctl("cfginfo").stdout == ""
    upload = ctrd.ctl("upload", str(config))
    assert upload.stdout == "Success\n"
    again = ctrd.ctl("upload", str(config), check=False)
    assert again.returncode == 1
    assert again.stdout == "Failure: configuration web-1-0 exists already\n"
    refused = ctrd.ctl("upload", str(bad), check=False)
    assert refused.returncode == 1 and refused.stdout.startswith(f"Failure: {bad}: major")
    api.call("POST", "/config", json.dumps(web_config("1", PORTS[1])).encode())
    assert ctrd.ctl("cfginfo").stdout == "web-1-0.cfg\nweb-1-1.cfg\n"

    launch = ctrd.ctl("launch", "web", "1", "0")
    (instance,) = api.instances()
    assert launch.stdout == f"Success: {instance['instance']}\n"
    assert wait_page(PORTS[0], "/potato/potato.html") == "<p>potato</p>\n"
    unknown = ctrd.ctl("launch", "web", "9", "9", check=False)
    assert unknown.returncode == 1 and unknown.stdout == "Failure: no configuration web-9-9\n"
    broken = {**web_config("2", PORTS[2]), "base_image": "missing.tar.gz"}
    api.call("POST", "/config", json.dumps(broken).encode())
    failed = ctrd.ctl("launch", "web", "1", "2", check=False)
    assert failed.returncode == 1 and failed.stdout.startswith("Failure: ")
    assert "missing.tar.gz" in failed.stdout and api.instances() == [instance]

    missing = ctrd.ctl("destroy", "no-such-instance", check=False)
    assert missing.returncode != 0 and missing.stdout == "Failure\n"
    assert ctrd.ctl("destroy", instance["instance"]).stdout == "Success\n"
    assert api.instances() == []
    wait_closed(PORTS[0])

    ctrd.ctl("launch", "web", "1", "0")
    ctrd.ctl("launch", "web", "1", "1")
    assert len(api.instances()) == 2
    assert ctrd.ctl("destroyall").stdout == "Success\n"
    assert api.instances() == []


def test_readwrite_mount_nested_in_a_read_mount(api: Api) -> None:
    """The issue's own example: READWRITE at /webserver/home inside a READ mount of /webserver."""
    config = web_config("0", PORTS[0], "READ", "READWRITE")
    assert api.call("POST", "/config", json.dumps(config).encode()) == (200, b"")
    api.json("POST", "/launch", {"name": "web", "major": "1", "minor": "0"})
    assert wait_page(PORTS[0], "/potato/tomato/tomato.html") == "<p>tomato</p>\n"


def test_instances_survive_a_ctrd_restart(api: Api, ctrd: Daemon) -> None:
    """A restarted ctrd adopts the instances as the configuration's: listed, and destroyed at
    once (SIGKILL; a shell as PID 1 would ignore the default SIGTERM until the stop timeout)."""
    config = {**web_config("0", PORTS[0]), "startup_owner": "ctr"}
    assert api.call("POST", "/config", json.dumps(config).encode()) == (200, b"")
    launched = api.json("POST", "/launch", {"name": "web", "major": "1", "minor": "0"})
    assert wait_page(PORTS[0], "/index.html") == "<p>index</p>\n"
    first = (page(PORTS[0], "/cgi-bin/ps") or "").splitlines()[1]
    assert first.split()[:2] == ["1", "ctr"]  # startup_owner, resolved in the image

    ctrd.kill(signal.SIGTERM)
    assert page(PORTS[0], "/index.html") == "<p>index</p>\n"  # ctrd's exit leaves it running
    ctrd.start()
    assert api.json("GET", "/cfginfo") == {"files": ["web-1-0.cfg"]}
    assert api.instances() == [launched]
    started = time.monotonic()
    assert api.call("DELETE", f"/destroy/{launched['instance']}") == (200, b"")
    assert time.monotonic() - started < 3
    wait_closed(PORTS[0])
