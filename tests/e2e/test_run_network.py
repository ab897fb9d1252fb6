"""Containers on the veth network, seen from the host and from each other."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Env

# A server answering every connection with the container's hostname and its processes.
SERVE = ("printf '#!/bin/sh\\nhostname\\nps -o pid,args\\n' > /srv.sh; chmod +x /srv.sh; "
         "echo ready; exec nc -ll -p {port} -e /srv.sh")


def fetch(address: str, port: int) -> str:
    """The server's whole reply; retried while it is still coming up."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with socket.create_connection((address, port), timeout=5) as conn:
                chunks = []
                while data := conn.recv(4096):
                    chunks.append(data)
            return b"".join(chunks).decode()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def serving(env: Env, name: str, address: str, port: int) -> Iterator[subprocess.Popen[str]]:
    proc = env.start("--name", name, "--address", address, "--stop-timeout", "0.2s", "--",
                     "/bin/sh", "-c", SERVE.format(port=port))
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_container_has_its_address_loopback_and_a_default_route(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "ip -4 -o addr; ip route", flags=("--address", "10.214.0.9/16"),
                  check=True).stdout
    assert "lo    inet 127.0.0.1/8" in out
    assert "eth0    inet 10.214.0.9/16" in out
    assert "default via 10.214.0.1 dev eth0" in out


def test_host_talks_to_a_server_in_the_container(env: Env) -> None:
    with serving(env, "srv", "10.214.0.5/16", 7000):
        reply = fetch("10.214.0.5", 7000)
    assert reply.splitlines()[0] == "srv"


def test_two_containers_on_the_same_port_see_only_themselves(env: Env) -> None:
    with serving(env, "one", "10.214.0.11/16", 8080), serving(env, "two", "10.214.0.12/16", 8080):
        first, second = fetch("10.214.0.11", 8080), fetch("10.214.0.12", 8080)
    assert first.splitlines()[0] == "one" and second.splitlines()[0] == "two"
    for reply in (first, second):
        processes = reply.splitlines()[2:]
        assert sum("nc -ll" in line for line in processes) == 1


def test_containers_reach_each_other(env: Env) -> None:
    with serving(env, "peer", "10.214.0.21/16", 9000):
        out = env.run("/bin/sh", "-c", "sleep 0.3; nc 10.214.0.21 9000 </dev/null",
                      check=True).stdout
    assert out.splitlines()[0] == "peer"


def test_address_outside_the_pool_is_refused(env: Env) -> None:
    result = env.run("/bin/true", flags=("--address", "192.168.77.2/24"))
    assert result.returncode != 0 and "192.168.77.2" in result.stderr


@pytest.mark.parametrize(("mode", "expect_eth0"), [("none", False), ("host", True)])
def test_network_modes(env: Env, mode: str, expect_eth0: bool) -> None:
    links = env.run("/bin/sh", "-c", "ls /sys/class/net", flags=("--network", mode),
                    check=True).stdout.split()
    assert "lo" in links
    if mode == "none":
        assert links == ["lo"]
    else:
        host_links = subprocess.run(["ls", "/sys/class/net"], capture_output=True,
                                    text=True).stdout.split()
        assert set(links) == set(host_links)
