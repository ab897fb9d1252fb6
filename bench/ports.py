"""Part: what a published port costs (issue 16, section 7), against a direct connection.

One container runs the servers; the host reaches them two ways: directly at the container's
address over the veth network (the kernel's path, what DNAT would give too) and through its
published ports on 127.0.0.1 (``ctrctl run --publish``: the userspace proxy of
``supervisor.runtime.network.ports``, the same code ctrd serves ports with).

- Throughput: iperf3 TCP, both directions (``-R``: container to host), rounds alternating the
  two paths. The container gets the host's iperf3 and python3 through read-only binds of /usr
  (as the overhead part does).
- Latency: a 1-byte request and its answer, over one TCP connection (TCP_NODELAY), over UDP, and
  over a new TCP connection per request (connect, request, answer, close, as an HTTP/1.0 client
  does), each many times; median and 99th percentile of one round trip. The server is the same
  small Python echo on both paths, so the difference is the proxy's.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

from bench import host
from bench.common import Section, median, table
from bench.overhead import IPERF_PORT, Runner, background, iperf, wait_for_server

ECHO_PORT = 7007
PUBLISHED = {"iperf": 25201, "tcp": 27007}  # host ports on 127.0.0.1
ROUND_TRIPS = 5000
CONNECTIONS = 1000

ECHO_SERVER = f"""
import socket, socketserver, threading
class Stream(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)
class Datagram(socketserver.BaseRequestHandler):
    def handle(self):
        self.request[1].sendto(self.request[0], self.client_address)
socketserver.ThreadingTCPServer.allow_reuse_address = True
tcp = socketserver.ThreadingTCPServer(("", {ECHO_PORT}), Stream)
udp = socketserver.UDPServer(("", {ECHO_PORT}), Datagram)
threading.Thread(target=udp.serve_forever, daemon=True).start()
tcp.serve_forever()
"""


def _iperf(address: str, port: int, seconds: int, reverse: bool) -> float:
    """``iperf``, again after a moment when its server is still busy with the last test (one at
    a time: a relayed close reaches it a little later than a direct one)."""
    for _ in range(5):
        try:
            return iperf(address, port, seconds, reverse)
        except KeyError:  # an error report without results
            time.sleep(1)
    return iperf(address, port, seconds, reverse)


def _timed(one: Callable[[], None], count: int) -> list[float]:
    """Seconds of each of ``count`` calls of ``one``."""
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        one()
        samples.append(time.perf_counter() - began)
    return samples


def tcp_round_trips(address: str, port: int, count: int) -> list[float]:
    with socket.create_connection((address, port), timeout=5) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def one() -> None:
            conn.sendall(b"x")
            if conn.recv(1) != b"x":
                raise RuntimeError("the echo server answered wrong")
        one()  # warm-up: the proxy's upstream connection is made on the first
        return _timed(one, count)


def udp_round_trips(address: str, port: int, count: int) -> list[float]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.connect((address, port))

        def one() -> None:
            sock.send(b"x")
            if sock.recv(1) != b"x":
                raise RuntimeError("the echo server answered wrong")
        one()
        return _timed(one, count)


def connection_round_trips(address: str, port: int, count: int) -> list[float]:
    def one() -> None:
        with socket.create_connection((address, port), timeout=5) as conn:
            conn.sendall(b"x")
            if conn.recv(1) != b"x":
                raise RuntimeError("the echo server answered wrong")
    return _timed(one, count)


def _until_echo(address: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            tcp_round_trips(address, port, 1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def measure(prefix: str, pool: str, rounds: int, seconds: int) -> Section:
    section = Section("Published ports: the proxy against a direct connection")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-ports-"))
    runner = Runner(prefix, pool, workdir)
    network = IPv4Network(pool)
    address = str(next(network.hosts()) + 1)  # the gateway is the first
    udp_port = PUBLISHED["tcp"]  # the echo's UDP side is published on the same number
    publish = ["-p", f"127.0.0.1:{PUBLISHED['iperf']}:{IPERF_PORT}",
               "-p", f"127.0.0.1:{PUBLISHED['tcp']}:{ECHO_PORT}",
               "-p", f"127.0.0.1:{udp_port}:{ECHO_PORT}/udp"]
    server = runner.command(["/bin/sh", "-c", f"/usr/bin/iperf3 -s -p {IPERF_PORT} & exec "
                             f"/usr/bin/python3 -c '{ECHO_SERVER}'"], network="veth",
                            address=f"{address}/{network.prefixlen}", flags=publish)
    paths = {"direct": (address, IPERF_PORT, ECHO_PORT, ECHO_PORT),
             "published": ("127.0.0.1", PUBLISHED["iperf"], PUBLISHED["tcp"], udp_port)}
    throughput: dict[str, dict[str, list[float]]] = {
        key: {"direct": [], "published": []} for key in ("host -> container", "container -> host")}
    latency: dict[str, dict[str, list[float]]] = {
        key: {"direct": [], "published": []} for key in ("tcp", "udp", "connection")}
    try:
        with background(server):
            for host_address, iperf_port, echo_port, _ in paths.values():
                wait_for_server(host_address, iperf_port)
                _until_echo(host_address, echo_port)
            for _ in range(rounds):
                for path, (host_address, iperf_port, _, _) in paths.items():
                    for key, reverse in (("host -> container", False),
                                         ("container -> host", True)):
                        throughput[key][path].append(_iperf(host_address, iperf_port,
                                                            seconds, reverse))
            for path, (host_address, _, echo_port, datagram_port) in paths.items():
                latency["tcp"][path] = tcp_round_trips(host_address, echo_port, ROUND_TRIPS)
                latency["udp"][path] = udp_round_trips(host_address, datagram_port,
                                                       ROUND_TRIPS)
                latency["connection"][path] = connection_round_trips(host_address, echo_port,
                                                                     CONNECTIONS)
    finally:
        host.sweep(prefix, workdir, section.add)
    report(section, throughput, latency, rounds, seconds)
    return section


def report(section: Section, throughput: dict[str, dict[str, list[float]]],
           latency: dict[str, dict[str, list[float]]], rounds: int, seconds: int) -> None:
    rows = []
    for key, sides in throughput.items():
        direct, published = median(sides["direct"]), median(sides["published"])
        rows.append([f"iperf3 TCP {key} (Gbit/s)", f"{direct:.2f}", f"{published:.2f}",
                     f"{published / direct:.2f}"])
    names = {"tcp": f"TCP round trip, one connection ({ROUND_TRIPS}x)",
             "udp": f"UDP round trip ({ROUND_TRIPS}x)",
             "connection": f"TCP connect + round trip + close ({CONNECTIONS}x)"}
    latency_rows = []
    for key, samples in latency.items():
        near, far = samples["direct"], samples["published"]
        latency_rows.append([
            names[key], f"{median(near) * 1e6:.0f} / {p99(near) * 1e6:.0f}",
            f"{median(far) * 1e6:.0f} / {p99(far) * 1e6:.0f}",
            f"+{(median(far) - median(near)) * 1e6:.0f}"])
    section.add(
        f"Medians of {rounds} alternating rounds of {seconds} s for throughput. \"direct\" is "
        "the container's address on the bridge, \"published\" its ports on 127.0.0.1 through "
        "the proxy (ctrctl run --publish).",
        table(["benchmark", "direct", "published", "published / direct"], rows),
        table(["latency, µs (median / p99)", "direct", "published", "added (median)"],
              latency_rows))
    section.data = {"rounds": rounds, "seconds": seconds, "throughput": throughput,
                    "latency": latency}

