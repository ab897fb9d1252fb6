"""Network values: the address pool and its addresses, published ports, modes, joins."""

from __future__ import annotations

import re
from ipaddress import IPv4Interface, IPv4Network
from typing import Any, Literal, cast

from supervisor.model.defaults import POOL
from supervisor.model.errors import Invalid, describe
from supervisor.model.names import container_name
from supervisor.model.spec import JOIN_PREFIX, PortMapping
from supervisor.model.values import Parse, items, string

NETWORK_MODES = ("veth", "none", "host")
_PORTS = re.compile(r"(\d+):(\d+)(?:/(tcp|udp))?")
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
    text = string(value)
    match = _PORTS.fullmatch(text.strip())
    if not match:
        raise Invalid(f"not a port mapping: {text!r} (use HOST:CONTAINER[/tcp|udp], "
                      'e.g. "8080:80/tcp")')
    host, container = int(match[1]), int(match[2])
    for port in (host, container):
        if not 1 <= port <= 65535:
            raise Invalid(f"port {port} in {text!r} is out of range (1-65535)")
    protocol = cast(Literal["tcp", "udp"], match[3] or "tcp")
    return PortMapping(host_port=host, container_port=container, protocol=protocol)


def port_mappings(value: Any) -> tuple[PortMapping, ...]:
    if not isinstance(value, list):
        raise Invalid(f'expected an array of port mappings, e.g. ["8080:80/tcp"], got '
                      f"{describe(value)}")
    mappings = items(port_mapping, value)
    for index, mapping in enumerate(mappings):
        if any((m.host_port, m.protocol) == (mapping.host_port, mapping.protocol)
               for m in mappings[:index]):
            raise Invalid(f"host port {mapping.host_port}/{mapping.protocol} is mapped twice",
                          at=(index,))
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
