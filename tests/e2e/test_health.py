"""Health checks and readiness with a real ctrd and real containers: where a check runs, what
its status does, a check that hangs, on_failure through the back-off, the metric; a container
that tells READY=1 over its own notify socket, and ``ctrctl start --wait``. (Under systemd:
test_systemd_readiness.py.)"""

from __future__ import annotations

import os
import re
import socket
import urllib.request
from pathlib import Path

from tests.e2e.conftest import Daemon

SLEEPER = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo started; while :; do sleep 0.1; done"]
[network]
mode = "none"
"""

# Prints the namespaces it is in and its cgroups (as the container sees them), then fails
# until /tmp/ok exists.
WHERE = """
[health]
command = ["/bin/sh", "-c", "for n in mnt net pid uts ipc cgroup user; do \
echo \\"ns-$n $(readlink /proc/self/ns/$n)\\"; done; echo \\"cgroups $(cat /proc/self/cgroup | \
tr '\\\\n' ' ')\\"; echo \\"pid-1-cgroups $(cat /proc/1/cgroup | tr '\\\\n' ' ')\\"; \
echo \\"uid $(id -u)\\"; test -e /tmp/ok"]
interval = "200ms"
timeout = "5s"
retries = 2
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health_lines(ctrd: Daemon, name: str) -> list[str]:
    return [line for line in ctrd.ctl("logs", name).stdout.splitlines()
            if "health check failed" in line]


def test_a_check_runs_in_every_namespace_and_the_cgroup_of_the_container(ctrd: Daemon) -> None:
    ctrd.define("hc-where", SLEEPER.replace("[network]", 'user = "ctr"\n[network]') + WHERE)
    ctrd.start()
    ctrd.ctl("start", "hc-where")
    pid = ctrd.status("hc-where")["pid"]
    ctrd.wait_for("hc-where", lambda s: s["health"] == "unhealthy")
    log = ctrd.ctl("logs", "hc-where").stdout
    assert "health check failed (exit status 1): ns-mnt " in log

    def seen(key: str) -> str:  # in the first failing check's output
        found = re.search(rf"(?:^|\s){key} (.+)$", log, re.MULTILINE)
        assert found, (key, log)
        return found.group(1).strip()

    for kind in ("mnt", "net", "pid", "uts", "ipc", "cgroup", "user"):
        assert seen(f"ns-{kind}") == os.readlink(f"/proc/{pid}/ns/{kind}"), kind
    assert seen("cgroups") == seen("pid-1-cgroups")  # PID 1's cgroups, seen from inside
    assert seen("uid") == "1000"  # as the container's own processes run
    ctrd.ctl("exec", "hc-where", "--", "touch", "/tmp/ok")
    status = ctrd.wait_for("hc-where", lambda s: s["health"] == "healthy")
    assert status["pid"] == pid and status["restarts"] == 0 and status["state"] == "running"
    assert "running (healthy)" in ctrd.ctl("list").stdout


def test_status_metric_and_list_follow_the_checks(ctrd: Daemon) -> None:
    port = free_port()
    (ctrd.config_dir / "ctrd.toml").write_text(
        (ctrd.config_dir / "ctrd.toml").read_text().replace(
            'metrics_listen = "off"', f'metrics_listen = "127.0.0.1:{port}"'))
    ctrd.define("hc-flip", SLEEPER + """
[health]
command = ["/bin/sh", "-c", "echo checking; test -e /tmp/ok"]
interval = "100ms"
retries = 3
start_period = "1h"
""")
    ctrd.start()
    ctrd.ctl("start", "hc-flip")

    def metric() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            text = page.read().decode()
        return {line.split('status="')[1].split('"')[0]: float(line.split()[-1])
                for line in text.splitlines()
                if line.startswith('ctr_container_health{name="hc-flip"')}

    # failures in the start period do not count: still starting
    ctrd.wait_for("hc-flip", lambda s: len(health_lines(ctrd, "hc-flip")) >= 3)
    assert ctrd.status("hc-flip")["health"] == "starting"
    assert metric() == {"starting": 1.0, "healthy": 0.0, "unhealthy": 0.0}
    ctrd.ctl("exec", "hc-flip", "--", "touch", "/tmp/ok")
    ctrd.wait_for("hc-flip", lambda s: s["health"] == "healthy")
    assert metric() == {"starting": 0.0, "healthy": 1.0, "unhealthy": 0.0}
    ctrd.ctl("exec", "hc-flip", "--", "rm", "/tmp/ok")  # once healthy, every failure counts
    ctrd.wait_for("hc-flip", lambda s: s["health"] == "unhealthy")
    assert metric() == {"starting": 0.0, "healthy": 0.0, "unhealthy": 1.0}
    assert health_lines(ctrd, "hc-flip")[-1].endswith(
        "health check failed (exit status 1): checking")
    ctrd.ctl("stop", "hc-flip")
    assert metric() == {}  # no run, no check


def test_a_check_that_overruns_its_timeout_is_killed_with_its_children_alone(
        ctrd: Daemon) -> None:
    ctrd.define("hc-slow", SLEEPER + """
[health]
command = ["/bin/sh", "-c", "test -e /tmp/ok && exit 0; echo hanging; sleep 1000 & wait"]
interval = "200ms"
timeout = "300ms"
retries = 1000
""")
    ctrd.start()
    ctrd.ctl("start", "hc-slow")
    pid = ctrd.status("hc-slow")["pid"]
    ctrd.wait_for("hc-slow", lambda s: len(health_lines(ctrd, "hc-slow")) >= 2)
    assert health_lines(ctrd, "hc-slow")[0].endswith(
        "health check failed (timed out after 0.3s): hanging")
    ctrd.ctl("exec", "hc-slow", "--", "touch", "/tmp/ok")
    ctrd.wait_for("hc-slow", lambda s: s["health"] == "healthy")
    # Every hung check went with its child; the container was left alone. (A new check's shell,
    # whose script names the sleep, may be running: its child would be the sleep itself.)
    processes = ctrd.ctl("exec", "hc-slow", "--", "ps", "-o", "pid,args").stdout
    commands = [line.split(None, 1)[1] for line in processes.splitlines()[1:]]
    assert "sleep 1000" not in commands, processes
    status = ctrd.status("hc-slow")
    assert (status["pid"], status["state"], status["restarts"]) == (pid, "running", 0)


def test_on_failure_restart_restarts_through_the_back_off_until_the_burst(
        ctrd: Daemon) -> None:
    ctrd.define("hc-restart", SLEEPER + """
[restart]
policy = "no"
delay = "100ms"
burst = 2
interval = "60s"
stop_timeout = "2s"
[health]
command = ["/bin/false"]
interval = "100ms"
retries = 2
on_failure = "restart"
""")
    ctrd.start()
    ctrd.ctl("start", "hc-restart")
    failed = ctrd.wait_for("hc-restart", lambda s: s["state"] == "failed", timeout=30)
    assert failed["restarts"] == 2
    assert failed["reason"] == ("unhealthy: 2 health checks failed in a row, the last with exit "
                                "status 1; restart limit reached (2 in 60s)")
    assert ctrd.ctl("logs", "hc-restart").stdout.split().count("started") == 3


def test_start_wait_returns_once_the_container_told_ready_1(ctrd: Daemon, probes: Path) -> None:
    notify = f"""
[container]
image = "busybox"
command = ["/probe/notify", "1"]
notify = "container"
[network]
mode = "none"
[[mounts]]
source = "{probes / 'notify'}"
target = "/probe/notify"
read_only = true
"""
    ctrd.define("hc-notify", notify)
    ctrd.define("hc-dies", notify.replace('"/probe/notify", "1"', '"/probe/notify", "0", "die"'))
    ctrd.define("hc-silent", notify.replace('notify = "container"',
                                            'notify = "container"\nready_timeout = "1s"')
                .replace('"/probe/notify", "1"', '"/probe/notify", "1000"'))
    ctrd.start()
    ctrd.ctl("start", "--wait", "hc-notify")
    status = ctrd.status("hc-notify")
    assert status["ready"] is True
    log = ctrd.ctl("logs", "hc-notify").stdout
    assert "notify socket: /run/notify/notify.sock" in log and "sending READY=1" in log
    # without --wait, ctrctl start returns once it runs; READY=1 comes later
    ctrd.ctl("stop", "hc-notify")
    ctrd.ctl("start", "hc-notify")
    assert ctrd.status("hc-notify")["ready"] is False
    ctrd.wait_for("hc-notify", lambda s: s["ready"])

    dies = ctrd.ctl("start", "--wait", "hc-dies", check=False)
    assert dies.returncode == 1
    assert "container hc-dies did not become ready: exited with 3" in dies.stderr
    silent = ctrd.ctl("start", "--wait", "hc-silent", check=False)
    assert silent.returncode == 1
    assert "did not become ready: not ready within 1s (ready_timeout)" in silent.stderr
    assert ctrd.status("hc-silent")["state"] == "failed"
