"""Address leases from the pool, shared by every process that uses the same state directory.

A lease is a file ``STATE_DIR/network/leases/<ip>`` naming the container and its host interface;
``ctrctl run`` invocations and ctrd allocate under one ``flock`` on ``STATE_DIR/network/lock``, so
two starts never get the same address. A lease whose host interface no longer exists belongs to a
container that died without being detached (its veth went with its namespace): it is stale and its
address is free again (as is one whose interface is now another one of the same name, made for
a later container). One state directory serves one pool and one bridge: the bridge is removed
when that directory holds no live lease.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

from supervisor.runtime.locking import exclusive


@dataclass(frozen=True)
class Lease:
    """``host_ifindex`` tells a container's veth from a later one of the same name: the kernel
    does not reuse interface indexes (until they wrap around at 2**31)."""

    address: IPv4Address
    name: str
    host_ifname: str
    host_ifindex: int


def parse_pool(pool: str) -> IPv4Network:
    network = IPv4Network(pool)
    if network.prefixlen > 30:
        raise ValueError(f"pool {pool} is too small: it needs room for a gateway and containers")
    return network


def gateway(network: IPv4Network) -> IPv4Interface:
    """The pool's first address, held by the bridge, with the pool's prefix."""
    return IPv4Interface((network[1], network.prefixlen))


def locked(state_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the network lock of ``state_dir`` (across processes) for the ``with`` block."""
    return exclusive(state_dir / "network" / "lock")


def choose(state_dir: Path, network: IPv4Network, requested: str | None = None) -> IPv4Interface:
    """``requested`` (CIDR; only the address counts, the prefix is the pool's) or the next free
    address of ``network``. Call under ``locked()`` and ``record()`` the lease before leaving."""
    if requested is None:
        address = _next_free(state_dir, network)
    else:
        address = _requested(state_dir, network, requested)
    return IPv4Interface((address, network.prefixlen))


def record(state_dir: Path, lease: Lease) -> None:
    directory = _leases(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / str(lease.address),
                 os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, json.dumps({"name": lease.name, "host_ifname": lease.host_ifname,
                                 "host_ifindex": lease.host_ifindex}).encode())
    finally:
        os.close(fd)
    _last_reserved_path(state_dir).write_text(str(lease.address))


def holder(state_dir: Path, address: IPv4Address) -> Lease | None:
    """The lease on ``address``, or None if there is none (or it is unreadable)."""
    path = _leases(state_dir) / str(address)
    try:
        record = json.loads(path.read_text())
        return Lease(address, str(record["name"]), str(record["host_ifname"]),
                     int(record["host_ifindex"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def release(state_dir: Path, address: IPv4Address) -> None:
    (_leases(state_dir) / str(address)).unlink(missing_ok=True)


def in_use(state_dir: Path) -> bool:
    """Whether any container still holds a lease; stale leases met on the way are reclaimed."""
    try:
        names = os.listdir(_leases(state_dir))
    except FileNotFoundError:
        return False
    return any(not _claimable(state_dir, IPv4Address(entry)) for entry in names)


def _leases(state_dir: Path) -> Path:
    return state_dir / "network" / "leases"


def _last_reserved_path(state_dir: Path) -> Path:
    return state_dir / "network" / "last_reserved"


def _next_free(state_dir: Path, network: IPv4Network) -> IPv4Address:
    """The first address after the last one handed out that has no lease, wrapping round (as
    CNI's host-local allocator); only when every address has one, the first stale lease.

    A start looks at one lease file, not all of them, while the pool has room (at 500 leases,
    scanning from the pool's start took ~1 ms a start), and like a DHCP server this leaves a dead
    container's address (still in its peers' ARP caches) unused for as long as the pool allows.
    """
    first = int(gateway(network).ip) + 1
    size = int(network.broadcast_address) - first
    try:
        cursor = int(IPv4Address(_last_reserved_path(state_dir).read_text())) + 1 - first
    except (OSError, ValueError):
        cursor = 0
    if not 0 <= cursor < size:
        cursor = 0

    def candidates() -> Iterator[IPv4Address]:
        return (IPv4Address(first + (cursor + step) % size) for step in range(size))

    leases = _leases(state_dir)
    for address in candidates():
        if not os.path.lexists(leases / str(address)):
            return address
    for address in candidates():
        if _claimable(state_dir, address):
            return address
    raise OSError(errno.EADDRNOTAVAIL, f"no free address left in pool {network}")


def _requested(state_dir: Path, network: IPv4Network, requested: str) -> IPv4Address:
    try:
        address = IPv4Interface(requested).ip
    except ValueError:
        raise ValueError(f"invalid address {requested!r}: expected IPv4 CIDR such as "
                         f"{gateway(network).ip + 1}/{network.prefixlen}") from None
    reason = None
    if address not in network:
        reason = f"it is outside the pool {network}"
    elif address == network.network_address:
        reason = f"it is the network address of the pool {network}"
    elif address == network.broadcast_address:
        reason = f"it is the broadcast address of the pool {network}"
    elif address == gateway(network).ip:
        reason = "it is the pool's gateway"
    elif not _claimable(state_dir, address):
        lease = holder(state_dir, address)
        reason = f"it is in use by container {lease.name if lease else '?'}"
    if reason:
        raise ValueError(f"address {address} cannot be used: {reason}")
    return address


def _claimable(state_dir: Path, address: IPv4Address) -> bool:
    """True (after removing the lease) if the lease on ``address`` is stale."""
    lease = holder(state_dir, address)
    if lease is not None and _ifindex(lease.host_ifname) == lease.host_ifindex:
        return False
    release(state_dir, address)
    return True


def _ifindex(ifname: str) -> int | None:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None
