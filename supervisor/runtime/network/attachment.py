"""What a container's place on the bridge is called and recorded as: light enough for every
caller (the CLI, ctrd's state records, the metrics) without loading pyroute2."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

CONTAINER_IFNAME = "eth0"
_IFNAMSIZ = 15  # usable characters in a Linux interface name
_HOST_PREFIX = "ve-"
_IFB_PREFIX = "vi-"


@dataclass(frozen=True)
class Attachment:
    """A container's place on the bridge: what detach() and the metrics need to find it."""

    host_ifname: str
    container_ifname: str
    address: IPv4Interface
    gateway: IPv4Address
    bridge: str

    def to_dict(self) -> dict[str, str]:
        return {
            "host_ifname": self.host_ifname,
            "container_ifname": self.container_ifname,
            "address": str(self.address),
            "gateway": str(self.gateway),
            "bridge": self.bridge,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Attachment:
        return cls(
            host_ifname=data["host_ifname"],
            container_ifname=data["container_ifname"],
            address=IPv4Interface(data["address"]),
            gateway=IPv4Address(data["gateway"]),
            bridge=data["bridge"],
        )


def host_ifname(name: str) -> str:
    """``ve-NAME``; a name too long for the kernel keeps its start plus a hash of the whole."""
    room = _IFNAMSIZ - len(_HOST_PREFIX)
    if len(name) <= room:
        return _HOST_PREFIX + name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return _HOST_PREFIX + name[: room - len(digest)] + digest


def ifb_ifname(host_end: str) -> str:
    """``vi-NAME``: the IFB device that shapes what the container of host end ``ve-NAME``
    sends (``egress_rate``, see ``tc``)."""
    return _IFB_PREFIX + host_end.removeprefix(_HOST_PREFIX)
