"""Plug a container's network namespace into the host bridge with a veth pair, and unplug it.

The one part of the runtime that needs pyroute2 (through ``netlink``): imported only when a
container with a veth is started or torn down."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from supervisor.model import defaults
from supervisor.model.spec import NetworkSpec
from supervisor.runtime.network import ipam, netlink
from supervisor.runtime.network.attachment import (
    CONTAINER_IFNAME,
    Attachment,
    host_ifname,
    ifb_ifname,
)
from supervisor.runtime.network.netns import open_netns, run_in_netns

_RETIRED = "vx"  # a host end detached lazily, until the kernel removes it with its namespace


def attach(name: str, pid: int, spec: NetworkSpec, state_dir: Path, pool: str = defaults.POOL,
           bridge: str = defaults.BRIDGE) -> Attachment:
    """Give the network namespace of ``pid`` an ``eth0`` on ``bridge`` with an address from
    ``pool``, loopback up and a default route via the bridge; undo all of it on failure."""
    netns_fd = open_netns(pid)
    try:
        return _attach(name, spec, state_dir, pool, bridge, _NewPair(netns_fd))
    finally:
        os.close(netns_fd)


class Spare:
    """A veth pair made ahead of its container, into a network namespace made for it (the warm
    pool's, runtime/warm.py): the host end ``ifname`` (``index``) down and on no bridge,
    ``eth0`` (``inside_index``) in the namespace, and a netlink socket there, ``inside``, to
    configure it with when a container takes it."""

    def __init__(self, ifname: str, index: int, inside: netlink.Netlink,
                 inside_index: int) -> None:
        self.ifname = ifname
        self.index = index
        self.inside = inside
        self.inside_index = inside_index
        self.taken = False

    @classmethod
    def make(cls, netns_fd: int, ifname: str) -> Spare:
        inside = run_in_netns(netns_fd, netlink.Netlink)
        try:
            with netlink.Netlink() as host:
                host.run(netlink.new_spare_veth(ifname, CONTAINER_IFNAME, netns_fd))
            return cls(ifname, socket.if_nametoindex(ifname), inside, run_in_netns(
                netns_fd, lambda: socket.if_nametoindex(CONTAINER_IFNAME)))
        except BaseException:
            inside.close()
            delete_links([ifname])
            raise

    def plug(self, host: netlink.Netlink, ifname: str, bridge_index: int) -> int:
        self.taken = True  # from here on, an attachment's undo deletes it by its index
        host.run(netlink.claim_link(self.index, ifname, bridge_index))
        return self.index

    def configure(self, address: IPv4Interface, gateway: IPv4Address) -> None:
        self.inside.run(*_container_requests(self.inside_index, address, gateway))

    def close(self) -> None:
        """The socket inside: once closed, only the container holds the namespace."""
        self.inside.close()

    def discard(self) -> None:
        """Unused: the pair deleted now (it would go with its namespace, but later)."""
        self.close()
        delete_links([self.ifname])


def delete_links(names: Sequence[str]) -> None:
    """Delete the links ``names``; one already gone counts as done."""
    with netlink.Netlink() as host:
        host.run(*(netlink.delete_link(name=name) for name in names))


def attach_spare(name: str, spare: Spare, spec: NetworkSpec, state_dir: Path,
                 pool: str = defaults.POOL, bridge: str = defaults.BRIDGE) -> Attachment:
    """As ``attach``, with ``spare`` as the container's veth: renamed, plugged, configured."""
    return _attach(name, spec, state_dir, pool, bridge, spare)


class _NewPair:
    """The veth pair of ``attach``, made on the way into the namespace of ``netns_fd``."""

    def __init__(self, netns_fd: int) -> None:
        self.netns_fd = netns_fd

    def plug(self, host: netlink.Netlink, ifname: str, bridge_index: int) -> int:
        host.run(netlink.new_veth(ifname, bridge_index, CONTAINER_IFNAME, self.netns_fd))
        return socket.if_nametoindex(ifname)

    def configure(self, address: IPv4Interface, gateway: IPv4Address) -> None:
        run_in_netns(self.netns_fd, lambda: _configure_container(address, gateway))


def _attach(name: str, spec: NetworkSpec, state_dir: Path, pool: str, bridge: str,
            pair: _NewPair | Spare) -> Attachment:
    if spec.mode != "veth":
        raise ValueError(f"network mode {spec.mode!r} has no veth to attach")
    network = ipam.parse_pool(pool)
    gateway = ipam.gateway(network)
    ifname = host_ifname(name)
    # The lock covers the whole attach, so no other process sees a half-made attachment.
    with ipam.locked(state_dir), netlink.Netlink() as host:
        address = ipam.choose(state_dir, network, spec.address)
        lease: ipam.Lease | None = None
        try:
            index = pair.plug(host, ifname, _bridge(host, bridge, gateway))
            lease = ipam.Lease(address.ip, name, ifname, index)
            ipam.record(state_dir, lease)
            pair.configure(address, gateway.ip)
        except BaseException:
            _unplug(host, state_dir, lease, bridge)
            raise
    return Attachment(ifname, CONTAINER_IFNAME, address, gateway.ip, bridge)


def detach(attachment: Attachment, state_dir: Path, keep_bridge: bool = False,
           lazily: bool = False) -> None:
    """Remove the host end (the container end goes with it), the lease, and, unless
    ``keep_bridge``, the bridge if no container is left on it. Safe to repeat; touches nothing
    that belongs to another container now, even one of the same name.

    ``lazily``: once the container has ended. Deleting a veth waits for RCU grace periods
    (15-20 ms, longer than a whole warm start), and the kernel deletes the pair anyway with the
    container's network namespace, which goes once its last process has: so the host end is
    only renamed out of the way (``vx`` and its index), freeing its name for a restart."""
    with ipam.locked(state_dir), netlink.Netlink() as host:
        lease = ipam.holder(state_dir, attachment.address.ip)
        mine = lease is not None and lease.host_ifname == attachment.host_ifname
        bridge = None if keep_bridge else attachment.bridge
        _unplug(host, state_dir, lease if mine else None, bridge, lazily)


def remove_bridge_if_unused(state_dir: Path, bridge: str) -> None:
    """Delete ``bridge`` unless a container of ``state_dir`` is still on it (or it is gone)."""
    with ipam.locked(state_dir), netlink.Netlink() as host:
        _remove_bridge_if_unused(host, state_dir, bridge)


def _bridge(host: netlink.Netlink, name: str, gateway: IPv4Interface) -> int:
    """The bridge's index, creating it if needed, up and holding the gateway address."""
    try:
        index = socket.if_nametoindex(name)
    except OSError:
        host.run(netlink.new_bridge(name, _random_mac()))
        index = socket.if_nametoindex(name)
    host.run(netlink.link_up(index), netlink.add_address(index, gateway, replace=True))
    return index


def _random_mac() -> str:
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{octet:02x}" for octet in octets)


def _configure_container(address: IPv4Interface, gateway: IPv4Address) -> None:
    """Runs inside the container's namespace."""
    with netlink.Netlink() as inside:
        inside.run(netlink.link_up(socket.if_nametoindex("lo")), *_container_requests(
            socket.if_nametoindex(CONTAINER_IFNAME), address, gateway))


def _container_requests(index: int, address: IPv4Interface,
                        gateway: IPv4Address) -> list[netlink.Request]:
    """``eth0`` (``index``) up with its address, and the default route through it."""
    return [netlink.link_up(index), netlink.add_address(index, address),
            netlink.add_default_route(gateway, index)]


def _unplug(host: netlink.Netlink, state_dir: Path, lease: ipam.Lease | None,
            bridge: str | None, lazily: bool = False) -> None:
    """Delete (or, ``lazily``, retire: see ``detach``) the veth of ``lease`` (by index: never a
    later one of the same name) and the lease, then ``bridge`` if no container uses it any
    more."""
    if lease is not None:
        index = lease.host_ifindex
        host.run(*(netlink.retire_link(index, f"{_RETIRED}{index}") if lazily
                   else [netlink.delete_link(index=index)]),
                 netlink.delete_link(name=ifb_ifname(lease.host_ifname)))  # egress_rate's
        ipam.release(state_dir, lease.address)
    if bridge is not None:
        _remove_bridge_if_unused(host, state_dir, bridge)


def _remove_bridge_if_unused(host: netlink.Netlink, state_dir: Path, bridge: str) -> None:
    if not ipam.in_use(state_dir):
        host.run(netlink.delete_link(name=bridge))
