"""Traffic counters of every network link of ctrd's namespace, in one netlink dump.

The host end of a container's veth carries exactly the container's traffic, in the other
direction: what the host end transmits, the container receives.

RTM_GETSTATS rather than an RTM_GETLINK dump: that one returns every attribute of every link, and
decoding it with pyroute2 costs about 0.3 ms a link; RTM_GETSTATS with only the 64-bit counters
costs about 13 us a link (both measured with 1000 links). It names links by index, so the names
come from if_nameindex(3), which the C library answers with one dump of its own.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from pyroute2.netlink.rtnl import RTM_GETSTATS
from pyroute2.netlink.rtnl.ifstatsmsg import ifstatsmsg

from supervisor.runtime.network import netlink

_IFLA_STATS_LINK_64 = 1
_FILTER_LINK_64 = 1 << (_IFLA_STATS_LINK_64 - 1)  # IFLA_STATS_FILTER_BIT()


@dataclass(frozen=True)
class LinkCounters:
    """A link's counters as the kernel keeps them for that link (``ip -s link``)."""

    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


def read_links() -> dict[str, LinkCounters]:
    """Counters of every link in the calling thread's network namespace, by interface name."""
    request = ifstatsmsg()
    request["header"]["type"] = RTM_GETSTATS
    request["filter_mask"] = _FILTER_LINK_64
    with netlink.Netlink() as nl:
        replies = nl.dump(request, "dump link statistics")
    names = dict(socket.if_nameindex())
    counters = {}
    for reply in replies:
        name = names.get(reply["ifindex"])
        stats = reply.get_attr("IFLA_STATS_LINK_64")
        if name is None or stats is None:  # made or deleted between the two dumps
            continue
        counters[name] = LinkCounters(**{
            field: stats[field] for field in LinkCounters.__dataclass_fields__
        })
    return counters
