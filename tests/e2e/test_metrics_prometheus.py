"""End to end: a real Prometheus scrapes a real ctrd that runs a busy and an idle container.

What an operator would check: the busy container's CPU rate is positive and the idle one's about
zero, memory usage and limit are what the container's cgroup says, and ``promtool check metrics``
has nothing to say about ctrd's exposition.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.runtime.cgroups import open_driver
from tests.e2e.conftest import Daemon

pytestmark = pytest.mark.slow

BUSY = """[container]
image = "busybox"
command = ["/bin/sh", "-c", "while :; do :; done"]
[restart]
stop_timeout = "1s"
"""
IDLE = """[container]
image = "busybox"
command = ["/bin/sleep", "3600"]
[resources]
memory_max = "64M"
[restart]
stop_timeout = "1s"
"""
IDLE_LIMIT = 64 << 20


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _running_prometheus() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and os.readlink(entry / "exe") == "/usr/bin/prometheus":
                pids.add(int(entry.name))
    return pids


@pytest.fixture(scope="session")
def binaries() -> tuple[str, str]:
    """prometheus and promtool, from Debian's package (installed here if missing)."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        before = _running_prometheus()
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=True,
                       capture_output=True, timeout=900)
        # Where the package's scripts could start the system service, that one is not ours.
        for pid in _running_prometheus() - before:
            os.kill(pid, signal.SIGTERM)
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert prometheus and promtool, "the prometheus package installs no prometheus/promtool"
    return prometheus, promtool


class Prometheus:
    """A Prometheus server of the test's own on loopback, scraping ``target`` every second."""

    def __init__(self, binary: str, directory: Path, target: str) -> None:
        directory.mkdir()
        self.config = directory / "prometheus.yml"
        self.config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"scrape_configs:\n  - job_name: ctrd\n    static_configs:\n"
            f"      - targets: ['{target}']\n")
        self.log = directory / "prometheus.log"
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.command = [binary, f"--config.file={self.config}",
                        f"--storage.tsdb.path={directory / 'data'}",
                        f"--web.listen-address={self.url.removeprefix('http://')}"]

    @contextlib.contextmanager
    def running(self) -> Iterator[Prometheus]:
        with self.log.open("wb") as log:
            proc = subprocess.Popen(self.command, stdout=log, stderr=log)
        try:
            self._wait_ready(proc)
            yield self
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"prometheus exited: {self.log.read_text()[-2000:]}"
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{self.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)

    def query(self, expr: str) -> dict[str, float]:
        """Value by label ``name`` of every series of an instant query."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return {r["metric"].get("name", ""): float(r["value"][1])
                for r in body["data"]["result"]}

    def wait_for(self, expr: str, names: set[str], timeout: float = 40) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while not names <= set(result := self.query(expr)):
            assert time.monotonic() < deadline, f"{expr}: only {result} after {timeout}s; " \
                f"prometheus log: {self.log.read_text()[-2000:]}"
            time.sleep(0.5)
        return result


def _cgroup_file(name: str, *candidates: str) -> int:
    """The first of ``candidates`` (v1 and v2 names of one file) in the container's cgroup."""
    for directory in open_driver("auto").open(name).directories():
        for candidate in candidates:
            if (directory / candidate).is_file():
                return int((directory / candidate).read_text())
    raise AssertionError(f"none of {candidates} in the cgroup of {name}")


def test_prometheus_scrapes_ctrd(ctrd: Daemon, tmp_path: Path,
                                 binaries: tuple[str, str]) -> None:
    prometheus_binary, promtool = binaries
    target = f"127.0.0.1:{_free_port()}"
    (ctrd.config_dir / "ctrd.toml.d").mkdir()
    (ctrd.config_dir / "ctrd.toml.d" / "metrics.toml").write_text(f'metrics_listen = "{target}"\n')
    ctrd.define("busy", BUSY)
    ctrd.define("idle", IDLE)
    ctrd.start()
    ctrd.ctl("start", "busy")
    ctrd.ctl("start", "idle")

    with Prometheus(prometheus_binary, tmp_path / "prometheus", target).running() as prometheus:
        assert prometheus.wait_for('up{job="ctrd"}', {""}) == {"": 1.0}
        rates = prometheus.wait_for("rate(container_cpu_usage_seconds_total[5s])",
                                    {"busy", "idle"})
        assert rates["busy"] > 0.1, rates
        assert rates["idle"] < 0.01, rates

        usage = prometheus.query('container_memory_usage_bytes{name="idle"}')["idle"]
        actual = _cgroup_file("idle", "memory.usage_in_bytes", "memory.current")
        assert usage == pytest.approx(actual, rel=0.1)
        limits = prometheus.query("container_spec_memory_limit_bytes")
        assert limits["idle"] == IDLE_LIMIT == _cgroup_file(
            "idle", "memory.limit_in_bytes", "memory.max")
        assert limits["busy"] == 0  # unlimited, as cAdvisor reports it
        assert prometheus.query('ctr_container_state{state="running"}') == {
            "busy": 1.0, "idle": 1.0}
        assert set(prometheus.query("container_network_receive_packets_total")) == {
            "busy", "idle"}

    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as response:
        exposition = response.read()
    lint = subprocess.run([promtool, "check", "metrics"], input=exposition,
                          capture_output=True, timeout=30)
    assert (lint.returncode, lint.stdout, lint.stderr) == (0, b"", b"")
