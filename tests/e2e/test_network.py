"""Container networking against the real kernel: namespaces, veth pairs, a bridge, TCP traffic.

Every namespace here is held by a process the test forked (no ``ip netns`` files); the pool and
bridge are private to the test run, so a real ctrd on this host is not disturbed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import TypeVar

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

from supervisor.model.spec import NetworkSpec
from supervisor.runtime import network, syscalls
from supervisor.runtime.network import loopback
from supervisor.runtime.network import veth as veth_module
from supervisor.runtime.network.netns import open_netns, run_in_netns
from tests.e2e.conftest import link_exists

T = TypeVar("T")
POOL = "10.213.0.0/16"
GATEWAY = IPv4Address("10.213.0.1")
TAG = f"{os.getpid() % 100000}"  # keeps names of concurrent test runs apart



def inside(pid: int, function: Callable[[], T]) -> T:
    """``function()`` run in the network namespace of ``pid``."""
    fd = open_netns(pid)
    try:
        return run_in_netns(fd, function)
    finally:
        os.close(fd)


@dataclass
class View:
    """What `ip addr` and `ip route` would show inside a namespace."""

    up: dict[str, bool]
    addresses: dict[str, list[IPv4Interface]]
    default_gateways: list[str]


def view() -> View:
    with IPRoute() as ipr:
        links = ipr.link("dump")
        names = {link["index"]: link.get("ifname") for link in links}
        up = {link.get("ifname"): bool(link["flags"] & IFF_UP) for link in links}
        addresses: dict[str, list[IPv4Interface]] = {name: [] for name in up}
        for addr in ipr.addr("dump", family=socket.AF_INET):
            addresses[names[addr["index"]]].append(
                IPv4Interface(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}"))
        gateways = [route.get("RTA_GATEWAY") for route in ipr.route("dump", family=socket.AF_INET)
                    if route["dst_len"] == 0 and route.get("RTA_GATEWAY")]
    return View(up, addresses, gateways)


@dataclass
class Net:
    """A private state dir, pool and bridge, plus network namespaces held by child processes."""

    state: Path
    bridge: str
    pids: list[int] = field(default_factory=list)
    attachments: list[network.Attachment] = field(default_factory=list)

    def namespace(self) -> int:
        """A process sleeping in a new network namespace; killed by the fixture."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(read_end)
                syscalls.unshare(syscalls.CLONE_NEWNET)
                os.write(write_end, b"1")
                os.execv("/bin/sleep", ["sleep", "600"])
            finally:
                os._exit(127)
        self.pids.append(pid)
        os.close(write_end)
        ready = os.read(read_end, 1)
        os.close(read_end)
        assert ready == b"1", "namespace holder failed"
        return pid

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        self.pids.remove(pid)

    def attach(self, name: str, pid: int, address: str | None = None,
               pool: str = POOL) -> network.Attachment:
        attachment = network.attach(f"t{TAG}{name}", pid, NetworkSpec(address=address),
                                    self.state, pool=pool, bridge=self.bridge)
        self.attachments.append(attachment)
        return attachment

    def leases(self) -> dict[str, tuple[str, str]]:
        """Leased address -> (container name, host interface)."""
        directory = self.state / "network" / "leases"
        if not directory.is_dir():
            return {}
        records = {p.name: json.loads(p.read_text()) for p in directory.iterdir()}
        return {ip: (record["name"], record["host_ifname"]) for ip, record in records.items()}


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(state=tmp_path / "state", bridge=f"ctrt{TAG}")
    try:
        yield n
    finally:
        try:
            for attachment in n.attachments:
                network.detach(attachment, n.state)
        finally:
            for pid in list(n.pids):
                n.kill(pid)
            if link_exists(n.bridge):  # only if a detach above failed; report it, but clean up
                with IPRoute() as ipr:
                    ipr.link("del", ifname=n.bridge)
                pytest.fail(f"bridge {n.bridge} was left behind")


def serve_once(listener: socket.socket) -> threading.Thread:
    """Accept one connection and answer what it sends in upper case."""
    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())

    listener.settimeout(5)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def exchange(client: socket.socket, address: IPv4Address, port: int) -> bytes:
    client.settimeout(5)
    with client:
        client.connect((str(address), port))
        client.sendall(b"hello")
        return client.recv(100)


def test_container_is_configured_and_reachable_from_the_host(net: Net) -> None:
    pid = net.namespace()
    attachment = net.attach("a", pid)

    assert attachment.address == IPv4Interface("10.213.0.2/16")
    assert attachment.gateway == GATEWAY
    assert attachment.host_ifname == f"ve-t{TAG}a"
    assert attachment.bridge == net.bridge
    with IPRoute() as ipr:
        (veth,) = ipr.link("get", ifname=attachment.host_ifname)
        (bridge,) = ipr.link("get", ifname=net.bridge)
        bridge_addresses = [a.get("IFA_ADDRESS") for a in ipr.addr("dump", index=bridge["index"])]
    assert veth.get("IFLA_MASTER") == bridge["index"]
    assert veth["flags"] & IFF_UP and bridge["flags"] & IFF_UP
    assert str(GATEWAY) in bridge_addresses

    seen = inside(pid, view)
    assert seen.up == {"lo": True, "eth0": True}
    assert seen.addresses["eth0"] == [IPv4Interface("10.213.0.2/16")]
    assert seen.default_gateways == [str(GATEWAY)]

    listener = inside(pid, lambda: socket.create_server(("0.0.0.0", 0)))
    with listener:
        server = serve_once(listener)
        port = listener.getsockname()[1]
        assert exchange(socket.socket(), attachment.address.ip, port) == b"HELLO"
        server.join(5)


def test_two_containers_get_different_addresses_and_reach_each_other(net: Net) -> None:
    pid_a, pid_b = net.namespace(), net.namespace()
    a, b = net.attach("a", pid_a), net.attach("b", pid_b)
    assert (a.address.ip, b.address.ip) == (IPv4Address("10.213.0.2"), IPv4Address("10.213.0.3"))

    listener = inside(pid_b, lambda: socket.create_server(("0.0.0.0", 0)))
    with listener:
        server = serve_once(listener)
        client = inside(pid_a, socket.socket)  # a socket of container a's namespace
        assert exchange(client, b.address.ip, listener.getsockname()[1]) == b"HELLO"
        server.join(5)


def test_requested_address_is_honoured_with_the_pool_prefix(net: Net) -> None:
    pid = net.namespace()
    attachment = net.attach("a", pid, address="10.213.0.7/24")
    assert attachment.address == IPv4Interface("10.213.0.7/16")
    assert inside(pid, view).addresses["eth0"] == [IPv4Interface("10.213.0.7/16")]
    assert net.leases() == {"10.213.0.7": (f"t{TAG}a", f"ve-t{TAG}a")}


@pytest.mark.parametrize(("address", "reason"), [
    ("10.99.0.5/16", "outside the pool"),
    ("10.213.0.1/16", "gateway"),
    ("10.213.0.0/16", "network address"),
    ("10.213.255.255/16", "broadcast address"),
    ("10.213.0.300/16", "invalid address"),
])
def test_unusable_requested_address_is_refused(net: Net, address: str, reason: str) -> None:
    pid = net.namespace()
    with pytest.raises(ValueError, match=reason) as failure:
        net.attach("a", pid, address=address)
    assert address.split("/")[0] in str(failure.value)
    assert net.leases() == {}
    assert not link_exists(f"ve-t{TAG}a") and not link_exists(net.bridge)


def test_address_in_use_is_refused_and_the_holder_keeps_working(net: Net) -> None:
    pid_a, pid_b = net.namespace(), net.namespace()
    a = net.attach("a", pid_a, address="10.213.0.7/16")
    with pytest.raises(ValueError, match=rf"10\.213\.0\.7 .*in use by container t{TAG}a"):
        net.attach("b", pid_b, address="10.213.0.7/16")
    assert list(net.leases()) == ["10.213.0.7"]
    assert not link_exists(f"ve-t{TAG}b")
    assert link_exists(a.host_ifname) and link_exists(net.bridge)


def test_detach_removes_veth_lease_and_last_bridge(net: Net) -> None:
    pid_a, pid_b = net.namespace(), net.namespace()
    a, b = net.attach("a", pid_a), net.attach("b", pid_b)

    network.detach(a, net.state)
    assert not link_exists(a.host_ifname)
    assert inside(pid_a, view).up == {"lo": True}  # the container end went with the host end
    assert list(net.leases()) == [str(b.address.ip)]
    assert link_exists(net.bridge), "the bridge stays while a container uses it"

    network.detach(b, net.state)
    assert not link_exists(b.host_ifname)
    assert net.leases() == {}
    assert not link_exists(net.bridge)

    network.detach(b, net.state)  # again: nothing to do, no error


def test_failure_half_way_leaves_nothing_behind(net: Net, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = net.namespace()

    def broken(address: IPv4Interface, gateway: IPv4Address) -> None:
        raise OSError(errno.EIO, "injected failure inside the container")

    monkeypatch.setattr(veth_module, "_configure_container", broken)
    with pytest.raises(OSError, match="injected failure"):
        net.attach("a", pid)
    assert not link_exists(f"ve-t{TAG}a")
    assert net.leases() == {}
    assert not link_exists(net.bridge)
    assert inside(pid, view).up == {"lo": False}


def test_failure_leaves_another_containers_veth_alone(net: Net) -> None:
    """A second container of the same name fails on its veth and must not remove the first's."""
    pid_a, pid_b = net.namespace(), net.namespace()
    a = net.attach("a", pid_a)
    with pytest.raises(OSError, match="create veth") as failure:
        net.attach("a", pid_b)
    assert failure.value.errno == errno.EEXIST
    assert link_exists(a.host_ifname) and link_exists(net.bridge)
    assert list(net.leases()) == [str(a.address.ip)]


def test_missing_process_fails_cleanly(net: Net) -> None:
    pid = net.namespace()
    net.kill(pid)
    with pytest.raises(FileNotFoundError):
        net.attach("a", pid)
    assert net.leases() == {}


def kill_without_detach(net: Net, pid: int, attachment: network.Attachment) -> None:
    """The container dies unplugged: the kernel removes its veth along with its namespace."""
    net.kill(pid)
    deadline = time.monotonic() + 5
    while link_exists(attachment.host_ifname) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not link_exists(attachment.host_ifname)


def test_lease_of_a_dead_container_is_reclaimed(net: Net) -> None:
    pid_a = net.namespace()
    a = net.attach("a", pid_a, address="10.213.0.9/16")
    kill_without_detach(net, pid_a, a)

    b = net.attach("b", net.namespace(), address="10.213.0.9/16")
    assert b.address.ip == a.address.ip
    assert net.leases() == {"10.213.0.9": (f"t{TAG}b", b.host_ifname)}
    network.detach(a, net.state)  # the dead container's late detach must not hurt b
    assert link_exists(b.host_ifname) and list(net.leases()) == ["10.213.0.9"]


def test_late_detach_spares_a_restarted_container_of_the_same_name(net: Net) -> None:
    pid_old = net.namespace()
    old = net.attach("a", pid_old)
    kill_without_detach(net, pid_old, old)

    new = net.attach("a", net.namespace())
    assert new.host_ifname == old.host_ifname and new.address != old.address
    # The old lease names an interface that exists again, but it is not the old container's.
    other = net.attach("b", net.namespace(), address=str(old.address))
    network.detach(old, net.state)
    assert link_exists(new.host_ifname), "detach of the old container removed the new one's veth"
    assert net.leases() == {str(new.address.ip): (f"t{TAG}a", new.host_ifname),
                            str(other.address.ip): (f"t{TAG}b", other.host_ifname)}


def test_full_pool_reuses_stale_leases(net: Net) -> None:
    """Free addresses come first; stale leases are reclaimed when the pool has no other."""
    leases = net.state / "network" / "leases"
    leases.mkdir(parents=True)
    for host in (2, 3, 4, 5):  # /29: .1 is the gateway, .2-.6 are for containers
        (leases / f"10.213.0.{host}").write_text(
            json.dumps({"name": "gone", "host_ifname": "ve-gone-nothere"}))
    pool = "10.213.0.0/29"
    a = net.attach("a", net.namespace(), pool=pool)
    b = net.attach("b", net.namespace(), pool=pool)
    assert (str(a.address), str(b.address)) == ("10.213.0.6/29", "10.213.0.2/29")
    assert sorted(net.leases()) == [f"10.213.0.{host}" for host in (2, 3, 4, 5, 6)]


def test_addresses_go_round_the_pool_before_one_is_reused(net: Net) -> None:
    """A released address stays unused (peers may still cache it) until the pool wraps round."""
    pool = "10.213.0.0/29"  # .2-.6 for containers
    first = net.attach("a", net.namespace(), pool=pool)
    network.detach(first, net.state)
    net.attachments.remove(first)
    second = net.attach("b", net.namespace(), pool=pool)
    assert (first.address.ip, second.address.ip) == (IPv4Address("10.213.0.2"),
                                                     IPv4Address("10.213.0.3"))
    later = [net.attach(name, net.namespace(), pool=pool).address.ip for name in "cde"]
    assert later == [IPv4Address(f"10.213.0.{host}") for host in (4, 5, 6)]
    assert net.attach("f", net.namespace(), pool=pool).address.ip == IPv4Address("10.213.0.2")


def test_concurrent_attaches_from_several_processes_get_distinct_addresses(net: Net) -> None:
    pids = [net.namespace() for _ in range(8)]
    read_end, write_end = os.pipe()
    workers = []
    for index, pid in enumerate(pids):
        worker = os.fork()
        if worker == 0:
            status = 1
            try:
                os.close(read_end)
                attached = network.attach(f"t{TAG}c{index}", pid, NetworkSpec(), net.state,
                                          pool=POOL, bridge=net.bridge)
                os.write(write_end, (json.dumps(attached.to_dict()) + "\n").encode())
                status = 0
            finally:
                os._exit(status)
        workers.append(worker)
    os.close(write_end)
    with os.fdopen(read_end) as results:
        for line in results:
            net.attachments.append(network.Attachment.from_dict(json.loads(line)))
    assert [os.waitstatus_to_exitcode(os.waitpid(w, 0)[1]) for w in workers] == [0] * 8
    addresses = sorted(int(a.address.ip) for a in net.attachments)
    assert addresses == list(range(int(IPv4Address("10.213.0.2")), int(IPv4Address("10.213.0.10"))))


def test_loopback_comes_up_with_its_address(net: Net) -> None:
    pid = net.namespace()
    assert inside(pid, view).up == {"lo": False}
    inside(pid, loopback.bring_up)
    seen = inside(pid, view)
    assert seen.up == {"lo": True}
    assert seen.addresses["lo"] == [IPv4Interface("127.0.0.1/8")]
    assert not link_exists(net.bridge)


def test_host_ifname_fits_the_kernel_limit_and_is_stable() -> None:
    assert network.host_ifname("web") == "ve-web"
    assert network.host_ifname("a" * 12) == "ve-" + "a" * 12
    long_one = network.host_ifname("database-primary")
    long_two = network.host_ifname("database-replica")
    assert len(long_one) == len(long_two) == 15
    assert long_one.startswith("ve-databa") and long_one != long_two
    assert network.host_ifname("database-primary") == long_one


def test_attachment_survives_a_json_round_trip() -> None:
    attachment = network.Attachment("ve-web", "eth0", IPv4Interface("10.88.0.2/16"),
                                    IPv4Address("10.88.0.1"), "ctr0")
    assert network.Attachment.from_dict(json.loads(json.dumps(attachment.to_dict()))) == attachment
