"""OCI images under ctrd: a definition whose image is pulled before its first start (in threads
of ctrd's own, shown in ``status`` and ``list`` while it lasts, other containers going on
meanwhile), ``pull = "never"`` and a failed pull as the failed start's reason, the image's
StopSignal used by ``stop`` also after ctrd was restarted, the image held in the store while the
container exists, and the pull metrics.

The registry is Debian's docker-registry on loopback; the test of a pull in progress uses a
registry of its own whose layer blob waits until the test has seen the pull.
"""

from __future__ import annotations

import http.server
import json
import shutil
import signal
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, Env
from tests.images_fixtures import (
    OCI_MANIFEST,
    FakeRegistry,
    Handler,
    Layout,
    Registry,
    free_port,
    publish,
    registry,
    reply,
    tree_tar,
)

# PID 1 is a shell: without a handler it ignores SIGTERM, so a clean exit on stop shows that the
# image's StopSignal (SIGUSR1) was sent
STOPS_ON_USR1 = {
    "Cmd": ["/bin/sh", "-c", "trap 'echo stopped by USR1; exit 0' USR1; echo up; "
            "while :; do sleep 1; done"],
    "StopSignal": "SIGUSR1", "Env": ["GREETING=from-image"],
    "Labels": {"org.example.team": "ctr"}, "ExposedPorts": {"8080/tcp": {}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("registry")
    try:
        with registry(work) as running:
            yield running
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def base(busybox_image: Path) -> bytes:
    return tree_tar(busybox_image)


def _registries_conf(path: Path, monkeypatch: pytest.MonkeyPatch, *hosts: str) -> None:
    """ctrd and ctrctl (children of the test) pull from ``hosts`` over plain HTTP."""
    path.write_text("".join(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n'
                            for host in hosts))
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(path))


@pytest.fixture
def pulling_ctrd(ctrd: Daemon, server: Registry, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Daemon:
    _registries_conf(tmp_path / "registries.conf", monkeypatch, server.host)
    return ctrd


def _define(ctrd: Daemon, name: str, ref: str, extra: str = "") -> None:
    ctrd.define(name, f'[container]\nimage = "{ref}"\n{extra}\n[network]\nmode = "none"\n')


def test_a_definition_pulls_its_image_then_starts(pulling_ctrd: Daemon, server: Registry,
                                                  base: bytes, tmp_path: Path) -> None:
    ctrd = pulling_ctrd
    ref = publish(server, tmp_path, "web", base, config=STOPS_ON_USR1)
    _define(ctrd, "img-web", ref, 'pull = "missing"')
    ctrd.start()
    assert ctrd.status("img-web")["state"] == "stopped"  # nothing pulled before the start
    ctrd.ctl("start", "img-web")
    status = ctrd.status("img-web")
    assert status["state"] == "running" and status["pulling"] is None
    assert status["labels"] == {"org.example.team": "ctr"}
    assert status["exposed_ports"] == ["8080/tcp"]
    shown = ctrd.ctl("status", "img-web").stdout
    assert "Exposed:    8080/tcp" in shown and "Labels:     org.example.team=ctr" in shown
    rows = [line.split()[:2] for line in ctrd.ctl("images").stdout.splitlines()]
    assert [f"{server.host}/img/web", "1"] in rows  # in the store now
    ctrd.ctl("stop", "img-web")
    stopped = ctrd.status("img-web")
    assert stopped["state"] == "stopped" and stopped["exit_code"] == 0
    assert "stopped by USR1" in ctrd.ctl("logs", "img-web").stdout


def test_pull_never_fails_clearly(pulling_ctrd: Daemon, server: Registry, base: bytes,
                                  tmp_path: Path) -> None:
    ctrd = pulling_ctrd
    ref = publish(server, tmp_path, "never", base, config=STOPS_ON_USR1)
    _define(ctrd, "img-never", ref, 'pull = "never"')
    ctrd.start()
    result = ctrd.ctl("start", "img-never", check=False)
    assert result.returncode != 0
    assert 'is not in the image store and its pull policy is "never"' in result.stderr
    status = ctrd.status("img-never")
    assert status["state"] == "failed"
    assert 'its pull policy is "never": pull it first (ctrctl pull)' in status["reason"]
    assert server.manifest_fetches("img/never") == 0


def test_a_failed_pull_is_the_failed_starts_reason(pulling_ctrd: Daemon,
                                                   server: Registry) -> None:
    ctrd = pulling_ctrd
    _define(ctrd, "img-missing", f"{server.host}/img/web:no-such-tag")
    ctrd.start()
    assert ctrd.ctl("start", "img-missing", check=False).returncode != 0
    status = ctrd.status("img-missing")
    assert status["state"] == "failed"
    assert f"{server.host}/img/web:no-such-tag: 404 not found: manifest unknown" in (
        status["reason"])
    assert "manifest unknown" in ctrd.ctl("status", "img-missing").stdout


def test_the_image_is_held_while_the_container_exists_also_after_adoption(
        pulling_ctrd: Daemon, server: Registry, base: bytes, tmp_path: Path) -> None:
    ctrd = pulling_ctrd
    ref = publish(server, tmp_path, "held", base, config=STOPS_ON_USR1)
    _define(ctrd, "img-held", ref)
    ctrd.start()
    ctrd.ctl("start", "img-held")
    refused = ctrd.ctl("rmi", ref, check=False)
    assert "is in use by container(s) img-held" in refused.stderr
    ctrd.kill()  # the container runs on; the next ctrd adopts it
    ctrd.start()
    assert ctrd.status("img-held")["state"] == "running"
    assert "is in use by container(s) img-held" in ctrd.ctl("rmi", ref, check=False).stderr
    ctrd.ctl("stop", "img-held")  # the adopted run knows its image's StopSignal
    assert ctrd.status("img-held")["exit_code"] == 0
    assert ctrd.ctl("rmi", ref).stdout.startswith("Deleted: ")


def test_the_images_healthcheck_applies_unless_the_definition_has_one(
        pulling_ctrd: Daemon, server: Registry, base: bytes, tmp_path: Path) -> None:
    ctrd = pulling_ctrd
    ref = publish(server, tmp_path, "health", base, config={
        "Cmd": ["/bin/sh", "-c", "touch /tmp/ok; exec sleep 60"],
        "Healthcheck": {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 200_000_000}})
    _define(ctrd, "img-checked", ref)
    _define(ctrd, "img-unchecked", ref, '[health]\ncommand = ["NONE"]')
    ctrd.start()
    ctrd.ctl("start", "img-checked")
    ctrd.ctl("start", "img-unchecked")
    assert ctrd.wait_for("img-checked", lambda s: s["health"] == "healthy")["state"] == "running"
    assert ctrd.status("img-unchecked")["health"] is None


def test_pull_metrics(pulling_ctrd: Daemon, server: Registry, base: bytes,
                      tmp_path: Path) -> None:
    ctrd = pulling_ctrd
    port = free_port()
    (ctrd.config_dir / "ctrd.toml").write_text(
        f'pool = "{ctrd.env.pool}"\nbridge = "{ctrd.env.bridge}"\n'
        f'metrics_listen = "127.0.0.1:{port}"\n')
    ref = publish(server, tmp_path, "metrics", base, config=STOPS_ON_USR1)
    _define(ctrd, "img-metrics", ref)
    _define(ctrd, "img-unpullable", f"{server.host}/img/metrics:no-such-tag")
    ctrd.start()
    ctrd.ctl("start", "img-metrics")
    ctrd.ctl("start", "img-unpullable", check=False)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines()
                   if line.startswith("ctr_image"))
    assert float(samples["ctr_images"]) == 1
    assert float(samples['ctr_image_pulls_total{result="success"}']) == 1
    assert float(samples['ctr_image_pulls_total{result="failure"}']) == 1
    assert float(samples["ctr_image_pull_bytes_total"]) > len(base) / 4  # gzip of busybox
    assert float(samples["ctr_image_pull_duration_seconds_count"]) == 2


# -- a pull in progress ---------------------------------------------------------------------


def _stalling(blob: bytes, release: threading.Event) -> Handler:
    """Half the blob, then the rest once the test says so."""
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(len(blob)))
        request.end_headers()
        request.wfile.write(blob[:len(blob) // 2])
        request.wfile.flush()
        release.wait(60)
        request.wfile.write(blob[len(blob) // 2:])
    return handle


@pytest.fixture
def slow_registry(tmp_path: Path, base: bytes) -> Iterator[tuple[FakeRegistry, threading.Event]]:
    """A registry serving ``img/slow:1``, whose biggest blob (busybox) waits for the event."""
    fake = FakeRegistry()
    release = threading.Event()
    layout = Layout(tmp_path / "layout-slow")
    descriptor = layout.image([], config={"Cmd": ["/bin/sleep", "60"]}, base=base)
    manifest = json.loads((layout.path / "blobs/sha256" /
                           descriptor["digest"].partition(":")[2]).read_bytes())
    fake.routes["/v2/img/slow/manifests/1"] = reply(
        200, json.dumps(manifest).encode(), Content_Type=OCI_MANIFEST)
    for blob in (manifest["config"], *manifest["layers"]):
        data = (layout.path / "blobs/sha256" / blob["digest"].partition(":")[2]).read_bytes()
        fake.routes[f"/v2/img/slow/blobs/{blob['digest']}"] = (
            _stalling(data, release) if blob in manifest["layers"] else reply(200, data))
    fake.thread.start()
    try:
        yield fake, release
    finally:
        release.set()
        fake.close()


def test_a_pull_in_progress_is_shown_and_blocks_nothing_else(
        ctrd: Daemon, env: Env, slow_registry: tuple[FakeRegistry, threading.Event],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, release = slow_registry
    _registries_conf(tmp_path / "registries.conf", monkeypatch, fake.host)
    _define(ctrd, "img-slow", f"{fake.host}/img/slow:1")
    _define(ctrd, "img-other", "busybox", 'command = ["/bin/sleep", "60"]')
    ctrd.start()
    starting = env.start_background("start", "img-slow")
    try:
        status = ctrd.wait_for("img-slow", lambda s: bool(s["pulling"] and s["pulling"]["bytes"]),
                               timeout=60)
        assert status["state"] == "starting"
        assert status["pulling"]["image"] == f"{fake.host}/img/slow:1"
        assert 0 < status["pulling"]["bytes"] < status["pulling"]["total"]
        row = next(line for line in ctrd.ctl("list").stdout.splitlines()
                   if line.startswith("img-slow"))
        assert "starting (pulling " in row
        assert "Pulling:    " in ctrd.ctl("status", "img-slow").stdout
        # the event loop and the other containers go on meanwhile
        ctrd.ctl("start", "img-other")
        assert ctrd.status("img-other")["state"] == "running"
        ctrd.ctl("stop", "img-other")
        release.set()
        assert starting.wait(timeout=60) == 0
    finally:
        if starting.poll() is None:
            starting.send_signal(signal.SIGTERM)
            starting.wait(timeout=10)
    status = ctrd.status("img-slow")
    assert status["state"] == "running" and status["pulling"] is None
