"""Container networking: every container on one host bridge, as docker0 or cni-podman0 do.

Design. A Linux bridge ``ctr0`` on the host holds the pool's gateway address (default pool
10.88.0.0/16, gateway 10.88.0.1/16); containers on it reach each other directly, the host reaches
every container, and one gateway address serves all. Each container gets a veth pair in a single
netlink request: the container end ``eth0`` is created directly inside the container's network
namespace (IFLA_NET_NS_FD on the peer; well under 1 ms, where creating it on the host and moving it
costs about 20 ms) and the host end ``ve-NAME`` is enslaved to the bridge and set up in the same
request. Names longer than the kernel's 15 characters keep their start plus a short hash. Inside,
``eth0`` gets an address from the pool with the pool's prefix, loopback and ``eth0`` go up and the
default route points at the gateway; that configuration is sent from a thread that has joined the
container's namespace (see ``netns``), all four requests in one datagram (see ``netlink``).

The bridge is made when the first lease is taken and stays, as docker0 does: deleting and
re-making it costs about 45 ms of every start of a lone container (``ctrctl run --rm``, a restart
under ctrd). ctrd removes it when it exits with no container left on it; what a ``ctrctl run``
left stays until then (or ``ip link del``). Both happen under the same cross-process lock as the
leases (``ipam``), so concurrent starts cannot race.

Cost, measured on the development VM (median of 20, bridge already up): ``attach()`` 2.3-2.5 ms,
of which about 0.7 ms is the kernel creating the veth pair and 0.9 ms the in-namespace thread with
its four requests; the first attach, which also creates the bridge, about 3.4 ms. The same steps
through pyroute2's ``IPRoute`` took about 7 ms (an asyncio loop per socket, ~0.3 ms of Python per
request) and ``IPRoute(netns=...)`` alone 5.5 ms (it forks a helper). ``detach()`` takes 15-20 ms,
nearly all of it the kernel unregistering the veth (RCU grace periods), 75 ms when it also deletes
the bridge: callers on an event loop should run it in an executor.

Bandwidth limits (``egress_rate``, ``ingress_rate``) are tc's token bucket filters on the host
end and on an IFB device the container's traffic is redirected through (see ``tc``).

Importing pyroute2 costs about 100 ms once per process, so this package loads ``veth`` and ``tc``
(the only modules that need it) on the first attach, detach or rate: a container with network
"none" or "host", and every ``ctrctl`` verb, never pays for it.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.model import defaults
from supervisor.model.spec import NetworkSpec
from supervisor.runtime.network.attachment import CONTAINER_IFNAME, Attachment, host_ifname

if TYPE_CHECKING:
    from supervisor.runtime.network import veth


def attach(name: str, pid: int, spec: NetworkSpec, state_dir: Path, pool: str = defaults.POOL,
           bridge: str = defaults.BRIDGE) -> Attachment:
    """See ``veth.attach``."""
    from supervisor.runtime.network import veth

    return veth.attach(name, pid, spec, state_dir, pool, bridge)


def detach(attachment: Attachment, state_dir: Path, keep_bridge: bool = False,
           lazily: bool = False) -> None:
    """See ``veth.detach``."""
    from supervisor.runtime.network import veth

    veth.detach(attachment, state_dir, keep_bridge, lazily)


def make_spare(netns_fd: int, ifname: str) -> veth.Spare:
    """See ``veth.Spare``."""
    from supervisor.runtime.network import veth

    return veth.Spare.make(netns_fd, ifname)


def spare(ifname: str, index: int, inside: int, inside_index: int) -> veth.Spare:
    """The ``veth.Spare`` another process made, from its socket inside (a descriptor)."""
    from supervisor.runtime.network import netlink, veth

    return veth.Spare(ifname, index, netlink.Netlink(socket.socket(fileno=inside)), inside_index)


def attach_spare(name: str, pair: veth.Spare, spec: NetworkSpec, state_dir: Path,
                 pool: str = defaults.POOL, bridge: str = defaults.BRIDGE) -> Attachment:
    """See ``veth.attach_spare``."""
    from supervisor.runtime.network import veth

    return veth.attach_spare(name, pair, spec, state_dir, pool, bridge)


def delete_links(names: Sequence[str]) -> None:
    """See ``veth.delete_links``."""
    from supervisor.runtime.network import veth

    veth.delete_links(names)


def set_rates(attachment: Attachment, egress: int | None, ingress: int | None) -> None:
    """See ``tc.set_rates``."""
    from supervisor.runtime.network import tc

    tc.set_rates(attachment, egress, ingress)


def remove_bridge_if_unused(state_dir: Path, bridge: str) -> None:
    """See ``veth.remove_bridge_if_unused``."""
    from supervisor.runtime.network import veth

    veth.remove_bridge_if_unused(state_dir, bridge)


__all__ = [
    "CONTAINER_IFNAME",
    "Attachment",
    "attach",
    "attach_spare",
    "delete_links",
    "detach",
    "host_ifname",
    "make_spare",
    "remove_bridge_if_unused",
    "set_rates",
    "spare",
]
