"""Bandwidth limits of a container's veth (``egress_rate``, ``ingress_rate``): traffic control
through pyroute2's tc messages, on the host's side only.

What the container receives leaves the host through the host end ``ve-NAME`` of its veth: a
token bucket filter (tbf) as that end's root qdisc shapes it. What the container sends arrives on
``ve-NAME`` as ingress, where the kernel can police (drop what exceeds the rate) but not queue,
and TCP then backs off on losses instead of settling at the rate; this kernel has no policer
(``act_police``) besides. So that traffic is redirected (an ingress qdisc, a match-all u32
filter, a mirred action) to an IFB device of the container's, ``vi-NAME``, whose root tbf
shapes it like any egress, as the CNI bandwidth plugin does. Both bucket filters are in the
host's network namespace, out of the container's reach even with CAP_NET_ADMIN, and a rate is
changed in place (a tbf replaced by one of the new rate). The host end's qdiscs and filter go
with the veth; the IFB is deleted with it (``veth.detach``).

The bucket holds 10 ms at the rate and at least 64 KiB: the veth hands over packets of up to
64 KiB (GSO), and a smaller bucket would make tbf split every one. The queue holds 50 ms at the
rate on top, so a burst of a TCP window waits instead of being dropped.
"""

from __future__ import annotations

import errno
import socket

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWQDISC, RTM_NEWTFILTER, TC_H_INGRESS, TC_H_ROOT
from pyroute2.netlink.rtnl.tcmsg import cls_u32, sched_tbf, tcmsg

from supervisor.runtime.network import netlink
from supervisor.runtime.network.attachment import Attachment, ifb_ifname
from supervisor.runtime.network.netlink import Request

MIN_BURST = 64 << 10  # bytes: one GSO packet of a veth
BURST_TIME = 0.010  # seconds at the rate
LATENCY = "50ms"  # of queue at the rate, beyond the burst
_INGRESS = 0xFFFF0000  # the ingress qdisc's handle (ffff:)
_ETH_P_ALL = 0x0003
_FILTER_PRIO = 1


def burst(rate: int) -> int:
    """Bytes the bucket holds at ``rate`` bytes per second."""
    return max(int(rate * BURST_TIME), MIN_BURST)


def _message(kind: str, index: int, parent: int, flags: int, handle: int = 0,
             info: int = 0) -> tcmsg:
    message = tcmsg()
    message["header"]["type"] = RTM_NEWTFILTER if kind == "u32" else RTM_NEWQDISC
    message["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | flags
    message["index"] = index
    message["handle"] = handle
    message["parent"] = parent
    message["info"] = info
    message["attrs"] = [["TCA_KIND", kind]]
    return message


def shape(index: int, rate: int) -> Request:
    """Link ``index`` sends at most ``rate`` bytes per second: its root qdisc, made or replaced
    by a tbf of that rate."""
    message = _message("tbf", index, TC_H_ROOT, NLM_F_CREATE | NLM_F_REPLACE)
    message["attrs"].append(["TCA_OPTIONS", sched_tbf.get_parameters(
        {"rate": rate, "burst": burst(rate), "latency": LATENCY})])
    return Request(message, f"shape link {index} to {rate} bytes/s")


def redirect(index: int, to: int) -> list[Request]:
    """Everything arriving on link ``index`` leaves through link ``to`` instead."""
    ingress = _message("ingress", index, TC_H_INGRESS, NLM_F_CREATE | NLM_F_EXCL, _INGRESS)
    match_all = _message("u32", index, _INGRESS, NLM_F_CREATE | NLM_F_EXCL,
                         info=socket.htons(_ETH_P_ALL) | _FILTER_PRIO << 16)
    match_all["attrs"].append(["TCA_OPTIONS", cls_u32.get_parameters({
        "target": 0, "keys": ["0x0/0x0+0"],
        "action": {"kind": "mirred", "direction": "egress", "action": "redirect",
                   "ifindex": to}})])
    return [Request(ingress, f"add an ingress qdisc to link {index}", ignore=(errno.EEXIST,)),
            Request(match_all, f"redirect link {index}'s ingress to link {to}")]


def set_rates(attachment: Attachment, egress: int | None, ingress: int | None) -> None:
    """Limit what the container of ``attachment`` sends (``egress``) and receives
    (``ingress``), bytes per second; None leaves that direction as it is. Runs in the host's
    network namespace."""
    host_end = socket.if_nametoindex(attachment.host_ifname)
    with netlink.Netlink() as host:
        if ingress is not None:
            host.run(shape(host_end, ingress))
        if egress is None:
            return
        name = ifb_ifname(attachment.host_ifname)
        ifb = _index(name)
        if ifb is not None:
            host.run(shape(ifb, egress))
            return
        # The first egress limit: the IFB, shaping before anything is redirected to it.
        host.run(netlink.new_ifb(name))
        ifb = socket.if_nametoindex(name)
        host.run(shape(ifb, egress), *redirect(host_end, ifb))


def _index(name: str) -> int | None:
    try:
        return socket.if_nametoindex(name)
    except OSError:  # no such link
        return None
