"""Readiness and socket activation under a real systemd (252 on Debian 12), booted by
tests/systemd_harness.py with the project installed (test_systemd_e2e.py's ``machine``):
``systemctl start ctr@NAME`` returns once the container is ready (READY=1 from inside, or its
first passing health check) and fails with the reason when it dies or times out first; the
container's STATUS= shows in ``systemctl status``; ``ctr@NAME.socket`` holds the listening
socket, its first connection starts the container, which gets it as fd 3, and no connection is
refused while the container restarts, nor while ctrd does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_systemd_e2e import active, journal, machine, show, wait_for
from tests.systemd_harness import BootedSystemd

__all__ = ["machine"]  # test_systemd_e2e.py's booted systemd, ctr installed in it

PROBES = "/srv/hc-probes"  # inside the booted machine
PORT = 18080  # on the machine's own loopback (its network namespace)

NOTIFYING = """
[container]
image = "busybox"
command = ["{probes}/notify", "{delay}"{extra}]
notify = "container"
{more}
[network]
mode = "none"
[[mounts]]
source = "{probes}/notify"
target = "{probes}/notify"
read_only = true
[restart]
policy = "no"
"""

HEALTHY = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 2; echo now healthy; touch /tmp/ok; \
while :; do sleep 0.1; done"]
notify = "healthy"
[network]
mode = "none"
[health]
command = ["/bin/sh", "-c", "test -e /tmp/ok"]
interval = "200ms"
"""

# Serves one connection per run, then exits: every next connection waits for a restart.
SOCKET_ACTIVATED = """
[container]
image = "busybox"
command = ["{probes}/listen", "1"]
[network]
mode = "none"
[[mounts]]
source = "{probes}/listen"
target = "{probes}/listen"
read_only = true
[restart]
policy = "always"
delay = "200ms"
burst = 1000
"""

# A client inside the machine: COUNT connections at once to PORT, each answer on a line.
CLIENT = """
import socket, sys, threading
answers = []
def ask():
    with socket.create_connection(("127.0.0.1", {port}), timeout=60) as sock:
        answers.append(sock.makefile().read().strip())
threads = [threading.Thread(target=ask) for _ in range(int(sys.argv[1]))]
for t in threads: t.start()
for t in threads: t.join()
print("\\n".join(answers))
"""


@pytest.fixture(scope="module")
def booted(machine: BootedSystemd, probes: Path) -> Iterator[BootedSystemd]:
    """The machine with the probes and this module's definitions (all named hc-*)."""
    inside = machine.path(PROBES)
    inside.mkdir(parents=True, exist_ok=True)
    for probe in ("notify", "listen"):
        (inside / probe).write_bytes((probes / probe).read_bytes())
        (inside / probe).chmod(0o755)
    definitions = {
        "hc-notify": NOTIFYING.format(probes=PROBES, delay=2, extra="", more=""),
        "hc-early": NOTIFYING.format(probes=PROBES, delay=0, extra=', "die"', more=""),
        "hc-late": NOTIFYING.format(probes=PROBES, delay=1000, extra="",
                                    more='ready_timeout = "1s"'),
        "hc-healthy": HEALTHY,
        "hc-sock": SOCKET_ACTIVATED.format(probes=PROBES),
    }
    for name, text in definitions.items():
        machine.path(f"/etc/ctr/{name}.toml").write_text(text)
    machine.path("/root/hc-client.py").write_text(CLIENT.format(port=PORT))
    machine.run(["ctrctl", "reload"])
    yield machine
    for name in definitions:
        machine.run(["systemctl", "stop", f"ctr@{name}.socket", f"ctr@{name}"], check=False)
        machine.run(["systemctl", "reset-failed", f"ctr@{name}"], check=False)


def status(machine: BootedSystemd, name: str) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(machine.run(["ctrctl", "status", name, "-o",
                                                   "json"]).stdout)
    return view


def said(machine: BootedSystemd, unit: str) -> list[str]:
    """What the unit's journal holds: its processes' lines and its container's."""
    return [e["MESSAGE"] for e in journal(machine, "-u", unit)]


def test_the_unit_is_type_notify_and_returns_once_the_container_told_ready(
        booted: BootedSystemd) -> None:
    assert show(booted, "ctr@hc-notify", "Type") == "notify"
    booted.run(["systemctl", "start", "ctr@hc-notify"])
    # The probe waits 2 s before READY=1: systemctl returned only after it.
    assert status(booted, "hc-notify")["ready"] is True
    assert active(booted, "ctr@hc-notify") == "active"
    wait_for(lambda: "sending READY=1" in said(booted, "ctr@hc-notify"), "the probe's line")
    # The container's STATUS= reaches the unit, sent on behalf of its main process.
    wait_for(lambda: show(booted, "ctr@hc-notify", "StatusText") == "serving",
             "the container's STATUS=")
    shown = booted.run(["systemctl", "status", "ctr@hc-notify", "--no-pager"],
                       check=False).stdout
    assert 'Status: "serving"' in shown
    pid = show(booted, "ctr@hc-notify", "MainPID")
    assert booted.path(f"/proc/{pid}/cmdline").read_bytes() == b"/bin/sleep\0infinity\0"
    booted.run(["systemctl", "stop", "ctr@hc-notify"])
    assert status(booted, "hc-notify")["state"] == "stopped"


@pytest.mark.parametrize(("name", "reason"), [
    ("hc-early", "container hc-early did not become ready: exited with 3"),
    ("hc-late", "container hc-late did not become ready: not ready within 1s (ready_timeout)"),
])
def test_a_start_fails_with_the_reason_when_the_container_dies_or_times_out_first(
        booted: BootedSystemd, name: str, reason: str) -> None:
    started = booted.run(["systemctl", "start", f"ctr@{name}"], check=False)
    assert started.returncode != 0
    assert active(booted, f"ctr@{name}") == "failed"
    wait_for(lambda: f"ctrctl: {reason}" in said(booted, f"ctr@{name}"), "the reason")
    booted.run(["systemctl", "reset-failed", f"ctr@{name}"])


def test_notify_healthy_is_ready_at_the_first_passing_check(booted: BootedSystemd) -> None:
    booted.run(["systemctl", "start", "ctr@hc-healthy"])
    view = status(booted, "hc-healthy")
    assert (view["ready"], view["health"]) == (True, "healthy")
    wait_for(lambda: "now healthy" in said(booted, "ctr@hc-healthy"), "the command's line")
    assert "health check failed (exit status 1)" in said(booted, "ctr@hc-healthy")
    wait_for(lambda: show(booted, "ctr@hc-healthy", "StatusText") == "healthy", "STATUS=healthy")
    booted.run(["systemctl", "stop", "ctr@hc-healthy"])


def ask(machine: BootedSystemd, count: int) -> list[str]:
    return machine.run(["python3", "/root/hc-client.py", str(count)],
                       timeout=120).stdout.splitlines()


@pytest.fixture
def socket_unit(booted: BootedSystemd) -> Iterator[BootedSystemd]:
    dropin = booted.path("/etc/systemd/system/ctr@hc-sock.socket.d/listen.conf")
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(f"[Socket]\nListenStream=127.0.0.1:{PORT}\n")
    booted.run(["systemctl", "daemon-reload"])
    try:
        yield booted
    finally:
        booted.run(["systemctl", "stop", "ctr@hc-sock.socket", "ctr@hc-sock"], check=False)
        dropin.unlink()
        booted.run(["systemctl", "daemon-reload"])


def test_the_first_connection_starts_the_container_with_the_socket_as_fd_3(
        socket_unit: BootedSystemd) -> None:
    machine = socket_unit
    machine.run(["systemctl", "start", "ctr@hc-sock.socket"])
    assert active(machine, "ctr@hc-sock.service") == "inactive"
    assert status(machine, "hc-sock")["state"] == "stopped"
    hello = "hello from PID 1 on fd 3 (ctr@hc-sock.socket)"
    assert ask(machine, 1) == [hello]
    assert active(machine, "ctr@hc-sock.service") == "active"
    # Each run serves one connection and exits; those made meanwhile wait in the backlog.
    assert ask(machine, 5) == [hello] * 5
    assert status(machine, "hc-sock")["restarts"] >= 5
    machine.run(["ctrctl", "restart", "hc-sock"])  # restarted by hand, it keeps the socket too
    assert ask(machine, 1) == [hello]
    # A restarted ctrd has the socket from systemd's fd store for the next restart.
    machine.run(["systemctl", "restart", "ctrd"])
    assert ask(machine, 2) == [hello] * 2
    # Stopped, the container is started again by the next first connection.
    machine.run(["systemctl", "stop", "ctr@hc-sock.service"])
    wait_for(lambda: status(machine, "hc-sock")["state"] == "stopped", "hc-sock to stop")
    assert active(machine, "ctr@hc-sock.socket") == "active"
    assert ask(machine, 1) == [hello]
    assert active(machine, "ctr@hc-sock.service") == "active"
