"""End to end: a real Prometheus finds its targets through ctrd's ``GET /v1/sd/prometheus``
(``http_sd_configs``, over ctrd's TCP listener with its token) and scrapes them: ctrd's own
metrics, and the exporter a container declares with ``[metrics] port``, at the container's
address, labelled with its name and definition. What an operator then sees: the container's
own series, and ctrd's pressure, memory-event and start-duration series.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.e2e import test_metrics_prometheus
from tests.e2e.conftest import Daemon, Env
from tests.e2e.test_api_lock import call, listen_on_tcp
from tests.e2e.test_graders import free_port
from tests.e2e.test_metrics_prometheus import Prometheus

pytestmark = pytest.mark.slow
binaries = test_metrics_prometheus.binaries  # the fixture: Debian's prometheus and promtool

EXPORTER = """[container]
image = "busybox"
command = ["/usr/sbin/httpd", "-f", "-p", "9100", "-h", "/www"]
init = true
[[mounts]]
source = "{www}"
target = "/www"
read_only = true
[metrics]
port = 9100
path = "/exporter"
[restart]
stop_timeout = "1s"
"""
PLAIN = """[container]
image = "busybox"
command = ["/bin/sleep", "3600"]
[restart]
stop_timeout = "1s"
"""


def sd_config(api_port: int, token_file: Path) -> str:
    return textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: ctr
            http_sd_configs:
              - url: http://127.0.0.1:{api_port}/v1/sd/prometheus
                refresh_interval: 1s
                authorization:  # "type" given: 2.42 sends the bare token without it
                  type: Bearer
                  credentials_file: {token_file}
        """)


def test_prometheus_discovers_ctrd_and_the_containers_exporters(
        ctrd: Daemon, env: Env, tmp_path: Path, binaries: tuple[str, str]) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "exporter").write_text("# TYPE lim_exporter_up gauge\nlim_exporter_up 1\n")
    metrics_port = free_port()
    api_port = listen_on_tcp(ctrd, f'metrics_listen = "127.0.0.1:{metrics_port}"')
    (ctrd.config_dir / "ctrd.toml").write_text(
        (ctrd.config_dir / "ctrd.toml").read_text().replace('metrics_listen = "off"\n', ""))
    ctrd.define("lim-exp", EXPORTER.format(www=www))
    ctrd.define("lim-plain", PLAIN)
    ctrd.start()
    ctrd.ctl("start", "lim-exp")
    ctrd.ctl("start", "lim-plain")
    token_file = env.state / "api-token"
    address = ctrd.status("lim-exp")["ip"]

    status, targets = call(api_port, "GET", "/v1/sd/prometheus", token_file.read_text().strip())
    assert status == 200
    assert targets == [
        {"targets": [f"127.0.0.1:{metrics_port}"], "labels": {}},
        {"targets": [f"{address}:9100"], "labels": {"name": "lim-exp", "definition": "lim-exp",
                                                    "__metrics_path__": "/exporter"}},
    ]

    prometheus = Prometheus(binaries[0], tmp_path / "prometheus", "unused")
    prometheus.config.write_text(sd_config(api_port, token_file))
    with prometheus.running():
        assert prometheus.wait_for('up{job="ctr"}', {"", "lim-exp"}) == {"": 1.0, "lim-exp": 1.0}
        exported = prometheus.wait_for("lim_exporter_up", {"lim-exp"})
        assert exported == {"lim-exp": 1.0}
        labelled = prometheus.query('lim_exporter_up{definition="lim-exp"}')
        assert labelled == {"lim-exp": 1.0}
        # ctrd's own target: the new series, for the running containers (PSI: this host's
        # cgroup2 keeps it per cgroup, see supervisor/runtime/cgroups/v2/core.py)
        for metric in ("container_pressure_cpu_waiting_seconds_total",
                       "container_pressure_memory_stalled_seconds_total",
                       "container_pressure_io_waiting_seconds_total"):
            assert set(prometheus.wait_for(metric, {"lim-exp", "lim-plain"})) >= {
                "lim-exp", "lim-plain"}, metric
        events = prometheus.wait_for('container_memory_events_total{event="oom_kill"}',
                                     {"lim-plain"})
        assert events["lim-plain"] == 0
        starts = prometheus.wait_for("ctr_container_start_duration_seconds_count", {""})
        assert starts[""] == 2
