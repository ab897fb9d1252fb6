"""Published ports against the real kernel (issue 16, section 7): TCP and UDP, on every host
address or on one, answering where a user tries them: the host's loopback (IPv4 and IPv6),
another host (a network namespace of the test's own, joined to the host by a veth of its own,
reaching the host's address on it over IPv4 and IPv6), and another container (hairpin, through
the host's addresses); under ctrd and with ``ctrctl run --publish``.

The server is the static probe ``echo`` (tests/probes/echo.c), which answers with its hostname
and the address the connection came from. Containers here are named ``port-*``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from pyroute2 import IPRoute

from supervisor.runtime import syscalls
from supervisor.runtime.network.netns import run_in_netns
from tests.e2e.conftest import Daemon, Env

T = TypeVar("T")
TAG = os.getpid() % 200
HOST_SIDE = f"10.216.{TAG}.1"  # the host's address on the other host's veth
OTHER_SIDE = f"10.216.{TAG}.2"
HOST_SIDE6 = f"fd00:216:{TAG:x}::1"
OTHER_SIDE6 = f"fd00:216:{TAG:x}::2"
POOL = "10.217.0.0/16"  # this module's own: another test's bridge with the shared pool would
GATEWAY = "10.217.0.1"  # route the same addresses elsewhere; the gateway is the bridge's address


@pytest.fixture(autouse=True)
def own_pool(env: Env) -> None:
    env.pool = POOL  # before the ctrd fixture writes its ctrd.toml


def free_port() -> int:
    """A port free for TCP and UDP alike on every address (the kernel may hand it out again
    meanwhile: good enough for a test)."""
    while True:
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("", 0))
            port: int = tcp.getsockname()[1]
            try:
                udp.bind(("", port))
            except OSError:
                continue
        return port


@dataclass
class OtherHost:
    """A network namespace standing for another host, with a veth to the host."""

    netns: int  # a descriptor keeps it alive
    link: str  # the host's end

    def run(self, function: Callable[[], T]) -> T:
        return run_in_netns(self.netns, function)


def _new_netns() -> int:
    """A new network namespace, held by a descriptor only: a thread unshares, opens it, ends."""
    held: list[int] = []

    def make() -> None:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        held.append(os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net",
                            os.O_RDONLY | os.O_CLOEXEC))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    return held[0]


def _configure_other_side() -> None:
    with IPRoute() as ipr:
        lo, eth0 = ipr.link_lookup(ifname="lo")[0], ipr.link_lookup(ifname="eth0")[0]
        ipr.link("set", index=lo, state="up")
        ipr.link("set", index=eth0, state="up")
        ipr.addr("add", index=eth0, address=OTHER_SIDE, prefixlen=30)
        ipr.addr("add", index=eth0, address=OTHER_SIDE6, prefixlen=64, flags=0x02)  # NODAD


@pytest.fixture
def other_host() -> Iterator[OtherHost]:
    netns = _new_netns()
    link = f"ptoh{TAG}"
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=link, kind="veth", peer={"ifname": "eth0",
                                                           "net_ns_fd": netns})
            index = ipr.link_lookup(ifname=link)[0]
            ipr.addr("add", index=index, address=HOST_SIDE, prefixlen=30)
            ipr.addr("add", index=index, address=HOST_SIDE6, prefixlen=64, flags=0x02)
            ipr.link("set", index=index, state="up")
        run_in_netns(netns, _configure_other_side)
        yield OtherHost(netns, link)
    finally:
        with IPRoute() as ipr:
            for index in ipr.link_lookup(ifname=link):
                ipr.link("del", index=index)
        os.close(netns)


def ask(protocol: str, host: str, port: int, text: str,
        where: OtherHost | None = None) -> str:
    """One request to HOST:PORT (from ``where``, else the host) and its answer; "" if refused
    or unanswered."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM

    def open_socket() -> socket.socket:
        return socket.socket(family, kind)

    sock = where.run(open_socket) if where else open_socket()
    with sock:
        sock.settimeout(3)
        try:
            sock.connect((host, port))
            sock.sendall(text.encode())
            return sock.recv(4096).decode()
        except (ConnectionError, TimeoutError):
            return ""


def answer_of(protocol: str, host: str, port: int, text: str = "hello",
              where: OtherHost | None = None) -> str:
    """The answer once the server is up (it starts as the container does)."""
    deadline = time.monotonic() + 30
    while not (reply := ask(protocol, host, port, text, where)):
        assert time.monotonic() < deadline, f"no answer on {protocol} {host}:{port}"
        time.sleep(0.1)
    return reply


ECHO = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "/probes/echo udp 53 & exec /probes/echo tcp 80"]
[[mounts]]
source = "{probes}"
target = "/probes"
read_only = true
[network]
ports = [{ports}]
[restart]
stop_timeout = "300ms"
"""

CLIENT = """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[[mounts]]
source = "{probes}"
target = "/probes"
read_only = true
[restart]
stop_timeout = "300ms"
"""


def define(ctrd: Daemon, name: str, probes: Path, *ports: str) -> None:
    ctrd.define(name, ECHO.format(probes=probes, ports=", ".join(f'"{p}"' for p in ports)))


def test_a_port_on_every_address_answers_wherever_a_user_tries(
        ctrd: Daemon, probes: Path, other_host: OtherHost) -> None:
    port = free_port()
    define(ctrd, "port-echo", probes, f"{port}:80", f"{port}:53/udp")
    ctrd.define("port-client", CLIENT.format(probes=probes))
    ctrd.start()
    ctrd.ctl("start", "port-echo")
    ctrd.ctl("start", "port-client")
    for protocol in ("tcp", "udp"):
        for host in ("127.0.0.1", "::1"):  # the host's loopback, IPv4 and IPv6
            assert answer_of(protocol, host, port).startswith("port-echo "), (protocol, host)
        for host in (HOST_SIDE, HOST_SIDE6):  # another host, to the host's address
            reply = answer_of(protocol, host, port, where=other_host)
            assert reply.startswith("port-echo "), (protocol, host)
        for host in (GATEWAY, HOST_SIDE):  # another container, to the host's addresses
            reply = ctrd.ctl("exec", "port-client", "--", "/probes/echo", "ask", protocol,
                             host, str(port), "hairpin").stdout
            assert reply.startswith("port-echo ") and reply.endswith(" hairpin\n"), reply
    # what the container sees: the proxy's connections, from the bridge's gateway
    assert answer_of("tcp", "127.0.0.1", port, "who").split() == ["port-echo", GATEWAY, "who"]
    ctrd.ctl("stop", "port-echo")
    assert ask("tcp", "127.0.0.1", port, "gone?") == ""  # closed with the container
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as free:
        free.bind(("::", port))  # and free again at once, on IPv6 too


def test_a_port_on_one_host_address_answers_there_only(
        ctrd: Daemon, probes: Path, other_host: OtherHost) -> None:
    loopback, v6, outside = free_port(), free_port(), free_port()
    define(ctrd, "port-one", probes, f"127.0.0.1:{loopback}:80", f"[::1]:{v6}:53/udp",
           f"[{HOST_SIDE6}]:{outside}:80")
    ctrd.start()
    ctrd.ctl("start", "port-one")
    assert answer_of("tcp", "127.0.0.1", loopback).startswith("port-one ")
    assert answer_of("udp", "::1", v6).startswith("port-one ")
    assert answer_of("tcp", HOST_SIDE6, outside, where=other_host).startswith("port-one ")
    assert ask("tcp", HOST_SIDE, loopback, "no", where=other_host) == ""
    assert ask("tcp", "::1", loopback, "no") == ""
    assert ask("udp", "127.0.0.1", v6, "no") == ""


def test_an_adopted_container_is_published_again(ctrd: Daemon, probes: Path) -> None:
    port = free_port()
    define(ctrd, "port-adopted", probes, f"{port}:80")
    ctrd.start()
    ctrd.ctl("start", "port-adopted")
    pid = ctrd.status("port-adopted")["pid"]
    ctrd.kill()  # kill -9: the container keeps running, its port closes with ctrd
    ctrd.start()
    assert ctrd.status("port-adopted")["pid"] == pid
    assert answer_of("tcp", "127.0.0.1", port).startswith("port-adopted ")


def test_ctrctl_run_publishes_as_ctrd_does(env: Env, probes: Path) -> None:
    port = free_port()
    run = env.start_background(
        "run", "--rm", "--name", "port-run", "--stop-timeout", "300ms", "-p", f"{port}:80",
        "-p", f"[::1]:{port}:53/udp", "--mount", f"{probes}:/probes:ro", "--", "/bin/sh", "-c",
        "/probes/echo udp 53 & exec /probes/echo tcp 80")
    try:
        assert answer_of("tcp", "::1", port).startswith("port-run ")
        assert answer_of("udp", "::1", port).startswith("port-run ")
    finally:
        run.terminate()  # SIGTERM: ctrctl forwards it, then kills after the stop timeout
        assert run.wait(timeout=30) != 0
    assert ask("tcp", "127.0.0.1", port, "gone?") == ""
