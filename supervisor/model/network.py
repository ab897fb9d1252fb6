"""Network values: the address pool and its addresses, published ports, modes, joins."""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv4Interface, IPv4Network, ip_address
from typing import Any, Literal, cast

from supervisor.model.defaults import POOL
from supervisor.model.errors import Invalid, describe
from supervisor.model.names import container_name
from supervisor.model.spec import JOIN_PREFIX, PortMapping
from supervisor.model.values import Parse, items, string

NETWORK_MODES = ("veth", "none", "host")
_PORTS = re.compile(
    r"(?:(?:\[(?P<ipv6>[^\]]*)\]|(?P<ipv4>[^:\[\]]*)):)?(?P<host>\d+):(?P<container>\d+)"
    r"(?:/(?P<protocol>tcp|udp))?")
PORT_FORM = "[HOST_IP:]HOST:CONTAINER[/tcp|udp]"
_HOST_PORT = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s/]+)):(?P<port>\d+)")


def pool(value: Any) -> str:
    """An IPv4 network with room for a gateway and containers."""
    text = string(value).strip()
    try:
        network = IPv4Network(text)
    except ValueError as e:
        raise Invalid(f"not an IPv4 network: {text!r} ({e}; use e.g. {POOL})") from None
    if network.prefixlen > 30:
        raise Invalid(f"pool {network} is too small: it needs room for a gateway and containers")
    return str(network)


def address(pool_text: str) -> Parse[str]:
    """A static address the pool can give: inside it, not its network, broadcast or gateway
    (first) address. Only the address counts; the prefix is the pool's."""
    network = IPv4Network(pool_text)
    gateway = network.network_address + 1
    example = f"{gateway + 1}/{network.prefixlen}"

    def parse(value: Any) -> str:
        text = string(value)
        try:
            interface = IPv4Interface(text.strip())
        except ValueError:
            raise Invalid(f"not an IPv4 address in CIDR notation: {text!r} "
                          f"(use e.g. {example})") from None
        ip = interface.ip
        if ip not in network:
            raise Invalid(f"{ip} is outside the address pool {network}")
        if ip in (network.network_address, network.broadcast_address):
            raise Invalid(f"{ip} is the network or broadcast address of the pool {network}")
        if ip == gateway:
            raise Invalid(f"{ip} is the gateway of the pool {network}")
        return str(interface)
    return parse


def host_port(value: Any, alternative: str = "") -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``, where a server listens or a client connects; the
    message of a bad one names the caller's ``alternative`` spelling too."""
    text = string(value).strip()
    match = _HOST_PORT.fullmatch(text)
    if not match:
        also = f" or {alternative}" if alternative else ""
        raise Invalid(f"not HOST:PORT{also}: {text!r} (use e.g. 127.0.0.1:9838)")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise Invalid(f"port {port} is out of range (1-65535)")
    return match["ipv6"] or match["host"], port


def port_mapping(value: Any) -> PortMapping:
    """Docker's ``-p``: ``[HOST_IP:]HOST:CONTAINER[/tcp|udp]``, an IPv6 host address in
    brackets (``[::1]:8080:80``); without one, the port is published on every address."""
    text = string(value)
    match = _PORTS.fullmatch(text.strip())
    if not match:
        raise Invalid(f"not a port mapping: {text!r} (use {PORT_FORM}, "
                      'e.g. "8080:80/tcp", "127.0.0.1:8080:80" or "[::1]:5353:53/udp")')
    host, container = int(match["host"]), int(match["container"])
    for port in (host, container):
        if not 1 <= port <= 65535:
            raise Invalid(f"port {port} in {text!r} is out of range (1-65535)")
    protocol = cast(Literal["tcp", "udp"], match["protocol"] or "tcp")
    return PortMapping(host_port=host, container_port=container, protocol=protocol,
                       host_ip=_host_ip(match["ipv6"], match["ipv4"], text))


def _host_ip(ipv6: str | None, ipv4: str | None, text: str) -> str | None:
    if ipv6 is None and ipv4 is None:
        return None
    given = ipv6 if ipv6 is not None else ipv4
    try:
        ip = ip_address(given or "")
    except ValueError:
        raise Invalid(f"{given!r} in {text!r} is not an IP address (use e.g. 127.0.0.1, or "
                      "[::1] for IPv6)") from None
    if (ip.version == 6) != (ipv6 is not None):
        raise Invalid(f"{text!r}: an IPv6 address goes in brackets, an IPv4 one without "
                      "(e.g. [::1]:8080:80, 127.0.0.1:8080:80)")
    if ip.is_multicast:
        raise Invalid(f"{ip} in {text!r} is a multicast address, not one of the host's")
    return str(ip)


def published_at(mapping: PortMapping) -> str:
    """Where on the host: ``127.0.0.1:8080/tcp``, ``[::1]:53/udp``, ``8080/tcp`` (every
    address)."""
    port = f"{mapping.host_port}/{mapping.protocol}"
    if mapping.host_ip is None:
        return port
    ip = ip_address(mapping.host_ip)
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def overlap(a: PortMapping, b: PortMapping) -> bool:
    """Whether two mappings want the same host port: the same port and protocol, and
    addresses that meet (no address, or a family's ``0.0.0.0`` / ``::``, covers all of it)."""
    if (a.host_port, a.protocol) != (b.host_port, b.protocol):
        return False
    if a.host_ip is None or b.host_ip is None:
        return True
    x, y = ip_address(a.host_ip), ip_address(b.host_ip)
    return x.version == y.version and (x == y or x.is_unspecified or y.is_unspecified)


def port_mappings(value: Any) -> tuple[PortMapping, ...]:
    if not isinstance(value, list):
        raise Invalid(f'expected an array of port mappings, e.g. ["8080:80/tcp"], got '
                      f"{describe(value)}")
    return distinct_ports(items(port_mapping, value))


def distinct_ports(mappings: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
    """``mappings``, refused if two of them want the same host port."""
    for index, mapping in enumerate(mappings):
        if any(overlap(m, mapping) for m in mappings[:index]):
            raise Invalid(f"host port {published_at(mapping)} is mapped twice", at=(index,))
    return tuple(mappings)


def join(value: Any) -> str:
    """``container:OTHER``, naming a definition whose namespace is joined."""
    text = string(value)
    if not text.startswith(JOIN_PREFIX):
        raise Invalid(f'expected "container:NAME", got {text!r}')
    try:
        container_name(text.removeprefix(JOIN_PREFIX))
    except Invalid as e:
        raise Invalid(f"{text!r}: {e}") from None
    return text


def network_mode(value: Any) -> str:
    text = string(value)
    if text.startswith(JOIN_PREFIX):
        return join(text)
    if text not in NETWORK_MODES:
        raise Invalid(f'must be "veth", "none", "host" or "container:NAME", got {text!r}')
    return text
