"""Plug a container's network namespace into the host bridge with a veth pair, and unplug it.

The one part of the runtime that needs pyroute2 (through ``netlink``): imported only when a
container with a veth is started or torn down."""

from __future__ import annotations

import os
import socket
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


def attach(name: str, pid: int, spec: NetworkSpec, state_dir: Path, pool: str = defaults.POOL,
           bridge: str = defaults.BRIDGE) -> Attachment:
    """Give the network namespace of ``pid`` an ``eth0`` on ``bridge`` with an address from
    ``pool``, loopback up and a default route via the bridge; undo all of it on failure."""
    if spec.mode != "veth":
        raise ValueError(f"network mode {spec.mode!r} has no veth to attach")
    network = ipam.parse_pool(pool)
    gateway = ipam.gateway(network)
    ifname = host_ifname(name)
    netns_fd = open_netns(pid)
    try:
        # The lock covers the whole attach, so no other process sees a half-made attachment.
        with ipam.locked(state_dir), netlink.Netlink() as host:
            address = ipam.choose(state_dir, network, spec.address)
            lease: ipam.Lease | None = None
            try:
                index = _bridge(host, bridge, gateway)
                host.run(netlink.new_veth(ifname, index, CONTAINER_IFNAME, netns_fd))
                lease = ipam.Lease(address.ip, name, ifname, socket.if_nametoindex(ifname))
                ipam.record(state_dir, lease)
                run_in_netns(netns_fd, lambda: _configure_container(address, gateway.ip))
            except BaseException:
                _unplug(host, state_dir, lease, bridge)
                raise
    finally:
        os.close(netns_fd)
    return Attachment(ifname, CONTAINER_IFNAME, address, gateway.ip, bridge)


def detach(attachment: Attachment, state_dir: Path, keep_bridge: bool = False) -> None:
    """Remove the host end (the container end goes with it), the lease, and, unless
    ``keep_bridge``, the bridge if no container is left on it. Safe to repeat; touches nothing
    that belongs to another container now, even one of the same name."""
    with ipam.locked(state_dir), netlink.Netlink() as host:
        lease = ipam.holder(state_dir, attachment.address.ip)
        mine = lease is not None and lease.host_ifname == attachment.host_ifname
        bridge = None if keep_bridge else attachment.bridge
        _unplug(host, state_dir, lease if mine else None, bridge)


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
        index = socket.if_nametoindex(CONTAINER_IFNAME)
        inside.run(
            netlink.link_up(socket.if_nametoindex("lo")),
            netlink.link_up(index),
            netlink.add_address(index, address),
            netlink.add_default_route(gateway, index),
        )


def _unplug(host: netlink.Netlink, state_dir: Path, lease: ipam.Lease | None,
            bridge: str | None) -> None:
    """Delete the veth of ``lease`` (by index: never a later one of the same name) and the
    lease, then ``bridge`` if no container uses it any more."""
    if lease is not None:
        host.run(netlink.delete_link(index=lease.host_ifindex),
                 netlink.delete_link(name=ifb_ifname(lease.host_ifname)))  # egress_rate's
        ipam.release(state_dir, lease.address)
    if bridge is not None:
        _remove_bridge_if_unused(host, state_dir, bridge)


def _remove_bridge_if_unused(host: netlink.Netlink, state_dir: Path, bridge: str) -> None:
    if not ipam.in_use(state_dir):
        host.run(netlink.delete_link(name=bridge))
