"""Published ports: docker's ``-p`` forms read by the model's one parser, and the proxy relaying
TCP and UDP between loopback sockets of the test (a "container" listening on 127.0.0.1)."""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

import pytest

from supervisor.cli.local_run import spec_from_args
from supervisor.cli.main import parse_args
from supervisor.model.errors import Invalid
from supervisor.model.network import overlap, port_mapping, port_mappings, published_at
from supervisor.model.spec import PortMapping
from supervisor.runtime.network.ports import Background, Holders, PortError, Publisher


def parse_run(*flags: str) -> argparse.Namespace:
    return parse_args(["run", *flags, "--", "/bin/true"])


@pytest.mark.parametrize(("text", "expected"), [
    ("8080:80", PortMapping(8080, 80, "tcp")),
    ("5353:53/udp", PortMapping(5353, 53, "udp")),
    ("127.0.0.1:8080:80", PortMapping(8080, 80, "tcp", "127.0.0.1")),
    ("[::1]:8080:80/tcp", PortMapping(8080, 80, "tcp", "::1")),
    ("[FD00:0::2]:53:53/udp", PortMapping(53, 53, "udp", "fd00::2")),
    ("0.0.0.0:80:80", PortMapping(80, 80, "tcp", "0.0.0.0")),
])
def test_the_forms_docker_takes(text: str, expected: PortMapping) -> None:
    assert port_mapping(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("80", "not a port mapping: '80' (use [HOST_IP:]HOST:CONTAINER[/tcp|udp]"),
    ("::1:8080:80", "not a port mapping"),
    ("localhost:8080:80", "'localhost' in 'localhost:8080:80' is not an IP address"),
    ("[127.0.0.1]:8080:80", "an IPv6 address goes in brackets, an IPv4 one without"),
    ("224.0.0.1:53:53/udp", "224.0.0.1 in '224.0.0.1:53:53/udp' is a multicast address"),
    ("8080:80/sctp", "not a port mapping"),
    ("8080:0", "port 0 in '8080:0' is out of range (1-65535)"),
])
def test_a_bad_mapping_says_why(text: str, reason: str) -> None:
    with pytest.raises(Invalid, match=re.escape(reason)):
        port_mapping(text)


@pytest.mark.parametrize(("a", "b", "same"), [
    ("8080:80", "127.0.0.1:8080:81", True),  # every address includes loopback
    ("0.0.0.0:8080:80", "127.0.0.1:8080:81", True),
    ("127.0.0.1:8080:80", "127.0.0.2:8080:80", False),
    ("127.0.0.1:8080:80", "[::1]:8080:80", False),
    ("[::]:8080:80", "[::1]:8080:80", True),
    ("8080:80/tcp", "8080:80/udp", False),
    ("8080:80", "8081:80", False),
])
def test_which_mappings_want_the_same_host_port(a: str, b: str, same: bool) -> None:
    assert overlap(port_mapping(a), port_mapping(b)) is same


def test_a_host_port_mapped_twice_is_refused_by_the_definition_and_the_flag() -> None:
    with pytest.raises(Invalid, match=r"host port 127.0.0.1:8080/tcp is mapped twice") as toml:
        port_mappings(["8080:80", "127.0.0.1:8080:81"])
    assert toml.value.at == (1,)
    with pytest.raises(Invalid) as flags:
        spec_from_args(parse_run("-p", "8080:80", "-p", "127.0.0.1:8080:81"))
    assert str(flags.value) == str(toml.value)


def test_ctrctl_run_publishes_only_on_the_veth_network() -> None:
    spec = spec_from_args(parse_run("-p", "[::1]:5353:53/udp"))
    assert spec.network.ports == (PortMapping(5353, 53, "udp", "::1"),)
    with pytest.raises(Invalid, match="--publish needs --network veth"):
        spec_from_args(parse_run("--network", "host", "-p", "8080:80"))


def test_where_a_port_is_published_reads_as_a_user_writes_it() -> None:
    assert [published_at(port_mapping(text)) for text in
            ("8080:80", "127.0.0.1:8080:80/udp", "[::1]:53:53")] == \
        ["8080/tcp", "127.0.0.1:8080/udp", "[::1]:53/tcp"]


# -- the proxy, between loopback sockets ----------------------------------------------------------

def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The container's TCP server: every read comes back in brackets; "bye" after the EOF."""
    while data := await reader.read(65536):
        writer.write(b"<" + data + b">")
        await writer.drain()
    writer.write(b"bye")
    await writer.drain()
    writer.close()


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(b"u:" + data, addr)


@asynccontextmanager
async def container() -> AsyncIterator[tuple[int, int]]:
    """A TCP and a UDP echo server on 127.0.0.1: their ports."""
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", 0))
    try:
        yield server.sockets[0].getsockname()[1], udp.get_extra_info("sockname")[1]
    finally:
        server.close()
        udp.close()


def run(scenario: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))  # type: ignore[arg-type]


async def exchange_udp(family: int, host: str, port: int, data: bytes
                       ) -> tuple[bytes, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    with socket.socket(family, socket.SOCK_DGRAM) as client:
        client.setblocking(False)
        await loop.sock_sendto(client, data, (host, port))
        reply, source = await asyncio.wait_for(loop.sock_recvfrom(client, 100), 5)
    return reply, source[:2]


def test_tcp_is_relayed_both_ways_with_half_close_over_ipv4_and_ipv6() -> None:
    host_port = free_port()

    async def scenario() -> None:
        async with container() as (tcp, _):
            publisher = Publisher("web", [PortMapping(host_port, tcp, "tcp")])
            publisher.bind()
            await publisher.serve("127.0.0.1")
            try:
                for host in ("127.0.0.1", "::1"):
                    reader, writer = await asyncio.open_connection(host, host_port)
                    writer.write(b"hello")
                    assert await reader.readexactly(7) == b"<hello>"
                    writer.write_eof()  # the container still answers after our EOF
                    assert await reader.read() == b"bye"
                    writer.close()
            finally:
                publisher.close()
            with pytest.raises(ConnectionRefusedError):  # closed at once
                await asyncio.open_connection("127.0.0.1", host_port)

    run(scenario)


def test_a_large_transfer_arrives_whole() -> None:
    host_port = free_port()
    payload = b"0123456789abcdef" * 262144  # 4 MiB: flow control pauses and resumes both sides

    async def scenario() -> None:
        async with container() as (tcp, _):
            publisher = Publisher("web", [PortMapping(host_port, tcp, "tcp", "127.0.0.1")])
            publisher.bind()
            await publisher.serve("127.0.0.1")
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
                writer.write(payload)
                writer.write_eof()
                received = await reader.read()
                writer.close()
            finally:
                publisher.close()
        assert received.endswith(b"bye")
        assert received.replace(b"<", b"").replace(b">", b"")[:-3] == payload

    run(scenario)


def test_udp_replies_come_from_the_address_the_client_sent_to() -> None:
    host_port = free_port(socket.SOCK_DGRAM)

    async def scenario() -> None:
        async with container() as (_, udp):
            publisher = Publisher("dns", [PortMapping(host_port, udp, "udp")])
            publisher.bind()
            await publisher.serve("127.0.0.1")
            try:
                assert await exchange_udp(socket.AF_INET, "127.0.0.2", host_port, b"q") == \
                    (b"u:q", ("127.0.0.2", host_port))  # not 127.0.0.1, the route's choice
                assert await exchange_udp(socket.AF_INET6, "::1", host_port, b"6") == \
                    (b"u:6", ("::1", host_port))
            finally:
                publisher.close()

    run(scenario)


def test_a_port_of_another_container_or_program_is_refused_naming_it() -> None:
    holders = Holders()
    taken = free_port()
    first = Publisher("web", [PortMapping(taken, 80, "tcp", "127.0.0.1")], holders)
    first.bind()
    try:
        second = Publisher("api", [PortMapping(taken, 80, "tcp")], holders)
        with pytest.raises(PortError, match=f"^cannot publish host port {taken}/tcp: "
                           "container web publishes it$"):
            second.bind()
        lone = Publisher("api", [PortMapping(free_port(), 80, "tcp"),
                                 PortMapping(taken, 80, "tcp")])
        with pytest.raises(PortError, match=re.escape(
                f"cannot publish host port 0.0.0.0:{taken}/tcp: the port is in use by another "
                "program")):
            lone.bind()
        assert lone.ports[0].host_port and not lone._bound  # all or none
    finally:
        first.close()
    assert holders.holder(PortMapping(taken, 80, "tcp")) is None


def test_an_address_the_host_lacks_is_named() -> None:
    publisher = Publisher("web", [PortMapping(free_port(), 80, "tcp", "203.0.113.77")])
    with pytest.raises(PortError, match=re.escape(
            "no interface of the host has the address 203.0.113.77")):
        publisher.bind()


def test_a_connection_the_container_refuses_is_reset() -> None:
    host_port, closed = free_port(), free_port()

    async def scenario() -> None:
        publisher = Publisher("web", [PortMapping(host_port, closed, "tcp", "127.0.0.1")])
        publisher.bind()
        await publisher.serve("127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", host_port)
            with pytest.raises(ConnectionResetError):
                await reader.read()
            writer.close()
        finally:
            publisher.close()

    run(scenario)


def test_background_serves_without_an_event_loop_of_the_caller() -> None:
    """As ``ctrctl run --publish`` does."""
    host_port = free_port()
    upstream = socket.create_server(("127.0.0.1", 0))
    publisher = Publisher("run", [PortMapping(host_port, upstream.getsockname()[1], "tcp",
                                              "127.0.0.1")])
    publisher.bind()
    background = Background(publisher, "127.0.0.1")
    try:
        with socket.create_connection(("127.0.0.1", host_port), timeout=5) as client:
            inside, _ = upstream.accept()
            with inside:
                client.sendall(b"ping")
                assert inside.recv(4) == b"ping"
    finally:
        background.close()
        upstream.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", host_port), timeout=5)
