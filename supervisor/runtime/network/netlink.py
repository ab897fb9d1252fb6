"""A small synchronous rtnetlink client: pyroute2's message classes over one plain socket.

Why not pyroute2's ``IPRoute``: each instance builds its own asyncio event loop and costs about
1 ms to open plus about 0.3 ms of Python per request, and attaching a container needs a socket in
the host's namespace and another in the container's. A plain socket opens in 4 us, encoding one
message with pyroute2's classes takes about 40 us, and all requests of one step go out in a single
datagram: the kernel handles its messages in order and acknowledges each on its own.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from types import TracebackType
from typing import Any

from supervisor.runtime.network.rtnl import (
    IFF_UP,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    Marshal,
    ifaddrmsg,
    ifinfmsg,
    rtmsg,
)

_NETLINK_ROUTE = 0
_SOL_NETLINK = 270
_NETLINK_EXT_ACK = 11  # the kernel explains a refusal in text ("Nexthop has invalid gateway")
_RT_TABLE_MAIN = 254
_RTPROT_BOOT = 3  # what `ip route add` marks its routes with
_RT_SCOPE_UNIVERSE = 0
_RTN_UNICAST = 1
_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_RECV_SIZE = 65536  # the kernel puts at most 32 KiB of replies in one datagram


@dataclass(frozen=True)
class Request:
    """One message, what it does (for error messages) and the errnos that count as success."""

    message: Any  # a pyroute2 nlmsg
    what: str
    ignore: tuple[int, ...] = ()


class Netlink:
    """An rtnetlink socket in the network namespace of the thread that opens it."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        """``sock``: one opened so before (in another namespace, or process: it stays bound)."""
        if sock is None:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                 _NETLINK_ROUTE)
            sock.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
            sock.bind((0, 0))
        self._sock = sock
        self._seq = 0
        self._marshal = Marshal()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def run(self, *requests: Request) -> None:
        """Send ``requests`` in one datagram and wait for all acks.

        Raises OSError for the first request the kernel refused (later ones were still applied).
        """
        pending: dict[int, Request] = {}
        data = bytearray()
        for request in requests:
            self._seq += 1
            request.message["header"]["sequence_number"] = self._seq
            request.message.encode()
            data += request.message.data
            pending[self._seq] = request
        self._sock.send(data)
        failure: OSError | None = None
        while pending:
            for reply in self._marshal.parse(self._sock.recv(_RECV_SIZE)):
                header = reply["header"]
                if header["type"] != NLMSG_ERROR or header["sequence_number"] not in pending:
                    continue
                request = pending.pop(header["sequence_number"])
                error = header["error"]
                if error is not None and error.code not in request.ignore and failure is None:
                    failure = _os_error(error, request.what)
        if failure is not None:
            raise failure


def _os_error(error: Any, what: str) -> OSError:
    """pyroute2's NetlinkError as an OSError saying which request failed and why."""
    detail = error.args[1] if len(error.args) > 1 else os.strerror(error.code)
    return OSError(error.code, f"{what}: {detail}")


def _link(flags: int, index: int = 0, up: bool = False) -> Any:
    message = ifinfmsg()
    message["header"]["type"] = RTM_NEWLINK
    message["header"]["flags"] = flags
    message["index"] = index
    if up:
        message["flags"] = message["change"] = IFF_UP
    return message


def link_up(index: int) -> Request:
    return Request(_link(NLM_F_REQUEST | NLM_F_ACK, index, up=True), f"set link {index} up")


def retire_link(index: int, name: str) -> list[Request]:
    """Link ``index`` down and renamed ``name`` (the kernel renames only a link that is down);
    gone already counts as done."""
    down = _link(NLM_F_REQUEST | NLM_F_ACK, index)
    down["change"] = IFF_UP
    rename = _link(NLM_F_REQUEST | NLM_F_ACK, index)
    rename["attrs"] = [["IFLA_IFNAME", name]]
    return [Request(down, f"set link {index} down", ignore=(errno.ENODEV,)),
            Request(rename, f"rename link {index} to {name}", ignore=(errno.ENODEV,))]


def new_bridge(name: str, mac: str) -> Request:
    """A bridge with a fixed MAC: without one it takes the lowest MAC of its ports, which changes
    as containers come and go and leaves stale ARP entries for the gateway in the others."""
    message = _link(_CREATE, up=True)
    message["attrs"] = [
        ["IFLA_IFNAME", name],
        ["IFLA_ADDRESS", mac],
        ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "bridge"]]}],
    ]
    return Request(message, f"create bridge {name}", ignore=(errno.EEXIST,))


def new_ifb(name: str) -> Request:
    """An intermediate functional block device, up: a link traffic can be redirected to so
    that its egress queue shapes it (``tc``)."""
    message = _link(_CREATE, up=True)
    message["attrs"] = [["IFLA_IFNAME", name],
                        ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "ifb"]]}]]
    return Request(message, f"create ifb {name}")


def new_veth(name: str, master: int, peer: str, peer_netns_fd: int) -> Request:
    """A veth pair, ``name`` up and enslaved to ``master`` here, ``peer`` made directly in the
    namespace of ``peer_netns_fd`` (the peer cannot be set up in this request: the kernel links
    the pair only after configuring the peer, so opening it fails with ENOTCONN)."""
    message = _link(_CREATE, up=True)
    message["attrs"] = [["IFLA_IFNAME", name], ["IFLA_MASTER", master],
                        _veth_info(peer, peer_netns_fd)]
    return Request(message, f"create veth {name} with peer {peer}")


def new_spare_veth(name: str, peer: str, peer_netns_fd: int) -> Request:
    """A veth pair made ahead of its container (the warm pool's, runtime/warm.py): ``name``
    down and on no bridge, ``peer`` in the namespace of ``peer_netns_fd``."""
    message = _link(_CREATE)
    message["attrs"] = [["IFLA_IFNAME", name], _veth_info(peer, peer_netns_fd)]
    return Request(message, f"create veth {name} with peer {peer}")


def _veth_info(peer: str, peer_netns_fd: int) -> list[Any]:
    peer_info = {"attrs": [["IFLA_IFNAME", peer], ["IFLA_NET_NS_FD", peer_netns_fd]]}
    return ["IFLA_LINKINFO", {"attrs": [
        ["IFLA_INFO_KIND", "veth"],
        ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", peer_info]]}],
    ]}]


def claim_link(index: int, name: str, master: int) -> Request:
    """A spare link renamed ``name``, enslaved to ``master`` and up, in one request: the kernel
    renames a link only while it is down, and handles the name before the flags."""
    message = _link(NLM_F_REQUEST | NLM_F_ACK, index, up=True)
    message["attrs"] = [["IFLA_IFNAME", name], ["IFLA_MASTER", master]]
    return Request(message, f"rename link {index} to {name} on bridge {master}")


def delete_link(name: str = "", index: int = 0) -> Request:
    """Delete a link by name or index; already gone counts as done."""
    message = ifinfmsg()
    message["header"]["type"] = RTM_DELLINK
    message["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK
    message["index"] = index
    if name:
        message["attrs"] = [["IFLA_IFNAME", name]]
    return Request(message, f"delete link {name or index}", ignore=(errno.ENODEV,))


def add_address(index: int, address: IPv4Interface, replace: bool = False) -> Request:
    message = ifaddrmsg()
    message["header"]["type"] = RTM_NEWADDR
    message["header"]["flags"] = (
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE if replace else _CREATE
    )
    message["family"] = socket.AF_INET
    message["prefixlen"] = address.network.prefixlen
    message["index"] = index
    message["attrs"] = [["IFA_LOCAL", str(address.ip)], ["IFA_ADDRESS", str(address.ip)]]
    return Request(message, f"add address {address} to link {index}")


def add_default_route(gateway: IPv4Address, index: int) -> Request:
    message = rtmsg()
    message["header"]["type"] = RTM_NEWROUTE
    message["header"]["flags"] = _CREATE
    message["family"] = socket.AF_INET
    message["table"] = _RT_TABLE_MAIN
    message["proto"] = _RTPROT_BOOT
    message["scope"] = _RT_SCOPE_UNIVERSE
    message["type"] = _RTN_UNICAST
    message["attrs"] = [["RTA_GATEWAY", str(gateway)], ["RTA_OIF", index]]
    return Request(message, f"add default route via {gateway}")
