"""veth counters as the metrics read them, from the kernel: a veth pair in a network namespace
of the test's own."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

from supervisor.metrics.links import read_links
from supervisor.runtime import syscalls
from supervisor.runtime.network import netlink

# --- veth counters from the kernel ----------------------------------------------------------

def _in_new_netns(function: Callable[[], None]) -> None:
    """Run ``function`` in a thread of its own network namespace, which ends (with every link
    made in it) when the thread does."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            function()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _send(interface: str, frames: int, size: int) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((interface, 0))
        frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x02" + b"\x88\xb5" + b"\x00" * (size - 14)
        for _ in range(frames):
            raw.send(frame)


def test_read_links_sees_one_end_send_what_the_other_receives() -> None:
    frames, lost, size = 7, 3, 60

    def check() -> None:
        fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with netlink.Netlink() as nl:
                nl.run(netlink.new_bridge("br-test", "02:00:00:00:00:01"))
                nl.run(netlink.new_veth("ve-test", socket.if_nametoindex("br-test"), "peer", fd))
                _send("ve-test", lost, size)  # dropped: the other end is still down
                nl.run(netlink.link_up(socket.if_nametoindex("peer")))
        finally:
            os.close(fd)
        _send("peer", frames, size)
        links = read_links()
        assert {"lo", "br-test", "ve-test", "peer"} <= set(links)
        host_end, container_end = links["ve-test"], links["peer"]
        assert host_end.tx_dropped >= lost  # more if the kernel sent something meanwhile
        assert container_end.tx_packets >= frames
        assert container_end.tx_bytes >= frames * size
        assert (host_end.rx_packets, host_end.rx_bytes) == (
            container_end.tx_packets, container_end.tx_bytes)
        assert (host_end.tx_packets, host_end.tx_bytes) == (
            container_end.rx_packets, container_end.rx_bytes)

    _in_new_netns(check)
