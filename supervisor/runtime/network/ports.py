"""Published ports: a userspace proxy on asyncio from host ports to a container's address.

Each ``ports = ["[HOST_IP:]HOST:CONTAINER[/tcp|udp]"]`` entry is a socket on the host, bound
before the container starts (so a port another program or container holds fails the start,
naming it, and no connection is refused while the container comes up: it waits in the backlog),
and served once the container has its address: TCP connections are relayed byte for byte to the
container's port over the veth network, UDP datagrams through one connected socket per client,
as docker-proxy does. Without a host address a port is published on every address of the host,
IPv4 (``0.0.0.0``) and IPv6 (``::``, where the host has IPv6) alike; the container is reached on
its IPv4 address either way.

Why a proxy, and not nftables DNAT with ``route_localnet`` (docker's iptables rules, nspawn's
``--port``, netavark): one mechanism reaches the container from every place a user tries,

- the host's loopback, ``127.0.0.1`` and ``::1``: DNAT of a locally generated packet to
  127.0.0.1 needs ``net.ipv4.conf.*.route_localnet=1`` (the martian-address guard lifted: the
  kube-proxy CVE-2020-8558), and ``::1`` has no such switch at all, which is why
  systemd-nspawn's forwarded ports still do not answer on loopback (systemd #6106);
- an IPv6 address of the host to the container's IPv4 one, which NAT cannot translate;
- other hosts, through the host's own addresses, with no ``net.ipv4.ip_forward`` (off on this
  machine, and a host-wide change of routing that ctr would own);
- other containers through the host's address (hairpin), where DNAT needs masquerading on the
  bridge too;

and it holds the port: a bind is the kernel's own answer to "is it free?", a DNAT rule silently
steals the traffic of a program listening there. It leaves nothing behind that could outlive
ctrd or clash with the host's firewall (iptables-legacy, iptables-nft, firewalld). What it costs:
the container sees connections from the bridge's gateway, not the client's address (as behind
docker-proxy), ctrd's CPU carries the bytes, and while ctrd restarts the port is closed (an
adopted container is published again at once). Measured on the development VM (bench/ports.py,
docs/ports.md): 7.3-8.8 Gbit/s through the proxy against 11.5-12.5 direct over the veth, +52 us
a TCP round trip, +67 us a UDP one, +0.56 ms a new connection; far above what the services an
administrator publishes on such a host ask for, and the direct path stays for whoever needs
the kernel's full speed.

The one part of the runtime on asyncio: ctrd serves the ports on its own event loop, and
``ctrctl run --publish`` on one in a thread of its own (``Background``), so a container without
ctrd publishes exactly as one under it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from supervisor.model.network import overlap, published_at
from supervisor.model.spec import PortMapping

log = logging.getLogger(__name__)

BACKLOG = 512  # connections that wait while the container starts (and between accepts)
UDP_IDLE = 90.0  # seconds a UDP client's flow is kept without traffic (docker-proxy's)
UDP_FLOWS = 1024  # UDP clients followed at once; beyond, the one idle longest is dropped
_DATAGRAM = 65535
_BATCH = 64  # datagrams handled per wake-up before other work gets the loop
_IP_PKTINFO = 8  # <linux/in.h>; Python 3.11's socket module lacks the name
_IN_PKTINFO = struct.Struct("=I4s4s")  # ifindex, spec_dst, addr
_IN6_PKTINFO = struct.Struct("=16sI")  # addr, ifindex
_CMSG_SPACE = socket.CMSG_SPACE(max(_IN_PKTINFO.size, _IN6_PKTINFO.size))
_LINGER_RESET = struct.pack("ii", 1, 0)  # struct linger: on, 0 s
_FAMILY_MISSING = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


class PortError(OSError):
    """A host port that cannot be published; the message names it and why."""


class Holders:
    """Which container of this process publishes which host ports, so that a second publisher
    of one is refused by name (the kernel's refusal of its bind names nobody)."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[PortMapping, ...]] = {}

    def holder(self, mapping: PortMapping) -> str | None:
        return next((name for name, held in self._held.items()
                     if any(overlap(mapping, m) for m in held)), None)

    def take(self, name: str, ports: tuple[PortMapping, ...]) -> None:
        self._held[name] = ports

    def release(self, name: str) -> None:
        self._held.pop(name, None)


def _addresses(mapping: PortMapping) -> list[tuple[socket.AddressFamily, str]]:
    """The host addresses one mapping binds: its own, or both wildcards."""
    if mapping.host_ip is None:
        return [(socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")]
    version = ipaddress.ip_address(mapping.host_ip).version
    return [(socket.AF_INET6 if version == 6 else socket.AF_INET, mapping.host_ip)]


def _bind(mapping: PortMapping, family: socket.AddressFamily, host: str) -> socket.socket:
    kind = socket.SOCK_STREAM if mapping.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        if family == socket.AF_INET6:  # :: and 0.0.0.0 are bound apart, each its own family
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_STREAM:
            # Lets a restart re-bind past connections in TIME_WAIT; never a second listener.
            # (On UDP it would let two sockets share the port: not set there.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, mapping.host_port))
            sock.listen(BACKLOG)
        else:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            else:
                sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
            sock.bind((host, mapping.host_port))
    except BaseException:
        sock.close()
        raise
    return sock


def _refusal(mapping: PortMapping, host: str, exc: OSError) -> PortError:
    where = published_at(mapping) if mapping.host_ip else f"{host}:{published_at(mapping)}"
    if exc.errno == errno.EADDRINUSE:
        why = "the port is in use by another program"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"no interface of the host has the address {host}"
    else:
        why = exc.strerror or str(exc)
    return PortError(f"cannot publish host port {where}: {why}")


class Publisher:
    """The published ports of one container: ``bind()`` before it starts, ``serve()`` once it
    has its address, ``close()`` when it ends (connections under way are cut, as docker's)."""

    def __init__(self, name: str, ports: Sequence[PortMapping],
                 holders: Holders | None = None) -> None:
        self.name = name
        self.ports = tuple(ports)
        self._holders = holders
        self._bound: list[tuple[PortMapping, socket.socket]] = []
        self._served: list[_Served] = []

    def bind(self) -> None:
        """Every host socket bound (TCP ones listening), all or none: PortError naming the
        first port that cannot be had, and its holder when it is a container of ours."""
        try:
            for mapping in self.ports:
                holder = self._holders.holder(mapping) if self._holders else None
                if holder is not None and holder != self.name:
                    raise PortError(f"cannot publish host port {published_at(mapping)}: "
                                    f"container {holder} publishes it")
                for family, host in _addresses(mapping):
                    try:
                        self._bound.append((mapping, _bind(mapping, family, host)))
                    except OSError as exc:
                        if mapping.host_ip is None and family == socket.AF_INET6 \
                                and exc.errno in _FAMILY_MISSING:
                            log.debug("%s: no IPv6 on this host for %s", self.name,
                                      published_at(mapping))
                            continue
                        raise _refusal(mapping, host, exc) from None
        except BaseException:
            self.close()
            raise
        if self._holders is not None:
            self._holders.take(self.name, self.ports)

    async def serve(self, address: str) -> None:
        """Relay what arrives on the bound sockets to ``address``, the container's."""
        loop = asyncio.get_running_loop()
        for mapping, sock in self._bound:
            kind: type[_Served] = _TcpPort if mapping.protocol == "tcp" else _UdpPort
            served = kind(sock, (address, mapping.container_port), self.name)
            await served.start(loop)
            self._served.append(served)

    def close(self) -> None:
        """Stop listening at once (the port is free for a restart) and cut every relay."""
        for served in self._served:
            served.close()
        self._served.clear()
        for _, sock in self._bound:
            sock.close()
        self._bound.clear()
        if self._holders is not None:
            self._holders.release(self.name)


class _Served(Protocol):
    """One bound socket being served (``_TcpPort``, ``_UdpPort``)."""

    def __init__(self, sock: socket.socket, target: tuple[str, int], name: str) -> None: ...
    async def start(self, loop: asyncio.AbstractEventLoop) -> None: ...
    def close(self) -> None: ...


# -- TCP ------------------------------------------------------------------------------------------

class _Half(asyncio.Protocol):
    """One side of a relayed connection: what it receives, its peer's transport sends; a full
    peer pauses its reading (flow control), an EOF half-closes the peer, a reset aborts it."""

    def __init__(self, relays: set[_Half]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Half | None = None
        self.ended = False
        self._relays = relays

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._relays.add(self)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.ended = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.ended:
            if peer is not None and peer.transport is not None:
                peer.transport.close()
            return False  # closes this side
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # half-closed: the peer may still answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._relays.discard(self)
        peer = self.peer
        if peer is not None and peer.transport is not None:
            if exc is None:
                peer.transport.close()  # after what it still has to send
            else:
                _reset(peer.transport)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP reset, not an orderly FIN: what a refused or broken connection is."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _Client(_Half):
    """The side a client connected to: it reads nothing until the container's side is there."""

    def __init__(self, relays: set[_Half], target: tuple[str, int], name: str) -> None:
        super().__init__(relays)
        self._target = target
        self._name = name

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.transport.pause_reading()
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(lambda: _Half(self._relays),
                                                       *self._target)
        except OSError as exc:
            log.info("%s: port %d: %s", self._name, self._target[1], exc)
            _reset(self.transport)  # as the container's refusal reads to a direct client
            return
        assert isinstance(upstream, _Half) and upstream.transport is not None
        if self.transport.is_closing():
            upstream.transport.abort()
            return
        upstream.peer, self.peer = self, upstream
        self.transport.resume_reading()


class _TcpPort:
    def __init__(self, sock: socket.socket, target: tuple[str, int], name: str) -> None:
        self._sock = sock
        self._target = target
        self._name = name
        self._server: asyncio.Server | None = None
        self._relays: set[_Half] = set()

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._server = await loop.create_server(
            lambda: _Client(self._relays, self._target, self._name), sock=self._sock,
            backlog=BACKLOG)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for relay in list(self._relays):
            if relay.transport is not None:
                relay.transport.abort()


# -- UDP ------------------------------------------------------------------------------------------

class _Flow:
    """One UDP client: a socket connected to the container, and where its replies go back
    from (the address the client sent to, so a multi-homed host answers from the right one)."""

    def __init__(self, client: tuple[object, ...], source: list[tuple[int, int, bytes]],
                 target: tuple[str, int]) -> None:
        self.client = client
        self.source = source
        self.seen = time.monotonic()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK
                                  | socket.SOCK_CLOEXEC)
        try:
            self.sock.connect(target)
        except BaseException:
            self.sock.close()
            raise


def _reply_source(family: int, ancillary: list[tuple[int, int, bytes]]
                  ) -> list[tuple[int, int, bytes]]:
    """The control message that makes a reply leave from the address the request came to."""
    for level, kind, data in ancillary:
        if family == socket.AF_INET and (level, kind) == (socket.IPPROTO_IP, _IP_PKTINFO):
            _, _, destination = _IN_PKTINFO.unpack(data[:_IN_PKTINFO.size])
            return [(level, kind, _IN_PKTINFO.pack(0, destination, bytes(4)))]
        if family == socket.AF_INET6 and (level, kind) == (socket.IPPROTO_IPV6,
                                                           socket.IPV6_PKTINFO):
            return [(level, kind, data[:_IN6_PKTINFO.size])]
    return []


class _UdpPort:
    def __init__(self, sock: socket.socket, target: tuple[str, int], name: str) -> None:
        self._sock = sock
        self._target = target
        self._name = name
        self._flows: collections.OrderedDict[tuple[object, ...], _Flow] = \
            collections.OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweep: asyncio.TimerHandle | None = None

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._receive)
        self._sweep = loop.call_later(UDP_IDLE / 3, self._expire)

    def _receive(self) -> None:
        for _ in range(_BATCH):
            try:
                data, ancillary, _, client = self._sock.recvmsg(_DATAGRAM, _CMSG_SPACE)
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                log.debug("%s: %s", self._name, exc)
                continue
            flow = self._flows.get(client)
            if flow is not None:
                self._flows.move_to_end(client)
            else:
                try:
                    flow = self._open(client, ancillary)
                except OSError as exc:  # out of descriptors: this datagram is dropped
                    log.warning("%s: UDP port %d: %s", self._name, self._target[1], exc)
                    continue
            flow.seen = time.monotonic()
            with contextlib.suppress(OSError):  # full, or refused by the container: dropped
                flow.sock.send(data)

    def _open(self, client: tuple[object, ...], ancillary: list[tuple[int, int, bytes]]) -> _Flow:
        assert self._loop is not None
        while len(self._flows) >= UDP_FLOWS:
            self._drop(next(iter(self._flows)))
        flow = _Flow(client, _reply_source(self._sock.family, ancillary), self._target)
        self._flows[client] = flow
        self._loop.add_reader(flow.sock.fileno(), self._reply, flow)
        return flow

    def _reply(self, flow: _Flow) -> None:
        for _ in range(_BATCH):
            try:
                data = flow.sock.recv(_DATAGRAM)
            except BlockingIOError:
                return
            except OSError:  # ECONNREFUSED: nothing listens in the container (yet)
                continue
            flow.seen = time.monotonic()
            with contextlib.suppress(OSError):
                self._sock.sendmsg([data], flow.source, 0, flow.client)

    def _expire(self) -> None:
        assert self._loop is not None
        idle = time.monotonic() - UDP_IDLE
        for client in [c for c, flow in self._flows.items() if flow.seen < idle]:
            self._drop(client)
        self._sweep = self._loop.call_later(UDP_IDLE / 3, self._expire)

    def _drop(self, client: tuple[object, ...]) -> None:
        assert self._loop is not None
        flow = self._flows.pop(client)
        self._loop.remove_reader(flow.sock.fileno())
        flow.sock.close()

    def close(self) -> None:
        if self._loop is None:
            return
        if self._sweep is not None:
            self._sweep.cancel()
        self._loop.remove_reader(self._sock.fileno())
        for client in list(self._flows):
            self._drop(client)


# -- without ctrd ---------------------------------------------------------------------------------

class Background:
    """A publisher served from an event loop in a thread of its own, for a process that has
    none (``ctrctl run --publish``); ``close()`` stops it and frees the ports."""

    def __init__(self, publisher: Publisher, address: str) -> None:
        self._publisher = publisher
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(publisher.serve(address))
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="ctr-ports", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self.close()
            raise failure[0]

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop)
            self._thread.join()
        else:
            self._publisher.close()
        self._loop.close()

    def _stop(self) -> None:
        self._publisher.close()
        self._loop.stop()
