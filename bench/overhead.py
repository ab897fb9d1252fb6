"""Part 4: overhead of a container against the host, the classic containers-versus-VMs exercise.

The busybox image has neither sysbench nor iperf3, and the benchmark builds no other image: the
container gets the host's own binaries through read-only bind mounts of /usr, /usr/lib on /lib and
/usr/lib64 on /lib64 (Debian 12 is merged-/usr, so that is every library and the ELF interpreter).
The same binary thus runs on both sides; only the namespaces, cgroup and network path differ.

- sysbench cpu and memory, one thread, host and container in alternate rounds (``ctrctl run``,
  no resource limits: the cgroup is there, the limits are not).
- iperf3 TCP: the server in a container on the veth network, the client on the host, both
  directions (``-R``: container to host); against the same server and client over the host's
  loopback.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Network
from pathlib import Path

from bench import host
from bench.common import CTRCTL, IMAGE, Section, median, table, verdict

HOST_BINARIES = ["--mount", "/usr:/usr:ro", "--mount", "/usr/lib:/lib:ro",
                 "--mount", "/usr/lib64:/lib64:ro"]
SYSBENCH = {
    "cpu": (["sysbench", "cpu", "--threads=1"], r"events per second:\s*([\d.]+)", "events/s"),
    "memory": (["sysbench", "memory", "--threads=1", "--memory-block-size=1M",
                "--memory-total-size=10000G"], r"\(([\d.]+) MiB/sec\)", "MiB/s"),
}
IPERF_PORT = 5201
SYSBENCH_TOLERANCE = 0.02  # the target: within 2 % of the host


class Runner:
    """``ctrctl run --rm`` with this part's private directories, pool and bridge."""

    def __init__(self, prefix: str, pool: str, workdir: Path) -> None:
        self.prefix = prefix
        self.pool = pool
        self.workdir = workdir
        self.count = 0

    def command(self, argv: list[str], network: str = "none", address: str | None = None,
                flags: Sequence[str] = ()) -> list[str]:
        self.count += 1
        return [CTRCTL, "--state-dir", str(self.workdir / "state"), "--data-dir",
                str(self.workdir / "data"), "run", "--rm", "--name", f"{self.prefix}o{self.count}",
                "--rootfs", str(IMAGE), "--network", network, "--pool", self.pool,
                "--bridge", f"{self.prefix}br3", *(["--address", address] if address else []),
                *HOST_BINARIES, *flags, "--", *argv]


def sysbench(argv: list[str], pattern: str) -> float:
    output = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    match = re.search(pattern, output)
    if not match:
        raise RuntimeError(f"no result in the output of {' '.join(argv)}:\n{output}")
    return float(match.group(1))


def iperf(address: str, port: int, seconds: int, reverse: bool) -> float:
    """Gbit/s received, from one iperf3 client run on the host."""
    argv = ["iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-J",
            *(["-R"] if reverse else [])]
    result = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True,
                                       timeout=seconds + 30).stdout)
    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e9


def wait_for_server(address: str, port: int, timeout: float = 30.0) -> None:
    """Until the iperf3 server answers a real (tiny) test: a bare connect would confuse it. A try
    made before the container's network is up can hang past iperf3's own connect timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            if subprocess.run(["iperf3", "-c", address, "-p", str(port), "-n", "1K",
                               "--connect-timeout", "500"], capture_output=True,
                              timeout=2).returncode == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"no iperf3 server on {address}:{port} after {timeout:.0f}s")


@contextlib.contextmanager
def background(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """A server for the ``with`` block; SIGTERM (ctrctl forwards it to PID 1), then SIGKILL."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()  # ctrctl's container dies with it (PDEATHSIG)
            process.wait()


def measure(prefix: str, pool: str, rounds: int, seconds: int) -> Section:
    section = Section("Overhead: container against host")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-overhead-"))
    runner = Runner(prefix, pool, workdir)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for name, (argv, pattern, _unit) in SYSBENCH.items():
            timed_argv = [*argv, f"--time={seconds}", "run"]
            results[name] = {"host": [], "container": []}
            for _ in range(rounds):
                results[name]["host"].append(sysbench(timed_argv, pattern))
                results[name]["container"].append(
                    sysbench(runner.command(["/usr/bin/" + timed_argv[0], *timed_argv[1:]]),
                             pattern))
        results.update(tcp(runner, pool, rounds, seconds))
    finally:
        host.sweep(prefix, workdir, section.add)
    report(section, results, rounds, seconds)
    return section


def tcp(runner: Runner, pool: str, rounds: int,
            seconds: int) -> dict[str, dict[str, list[float]]]:
    network = IPv4Network(pool)
    address = str(next(network.hosts()) + 1)  # the gateway is the first
    results: dict[str, dict[str, list[float]]] = {
        "tcp host -> peer": {"host": [], "container": []},
        "tcp peer -> host": {"host": [], "container": []}}
    loopback = ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(IPERF_PORT + 1)]
    in_container = runner.command(["/usr/bin/iperf3", "-s", "-p", str(IPERF_PORT)],
                                  network="veth", address=f"{address}/{network.prefixlen}")
    with background(loopback), background(in_container):
        wait_for_server("127.0.0.1", IPERF_PORT + 1)
        wait_for_server(address, IPERF_PORT)
        for _ in range(rounds):
            for reverse, key in ((False, "tcp host -> peer"), (True, "tcp peer -> host")):
                results[key]["host"].append(iperf("127.0.0.1", IPERF_PORT + 1, seconds, reverse))
                results[key]["container"].append(iperf(address, IPERF_PORT, seconds, reverse))
    return results


def report(section: Section, results: dict[str, dict[str, list[float]]], rounds: int,
           seconds: int) -> None:
    rows, targets = [], []
    for name, sides in results.items():
        unit = SYSBENCH[name][2] if name in SYSBENCH else "Gbit/s"
        host_value, ctr_value = median(sides["host"]), median(sides["container"])
        ratio = ctr_value / host_value
        rows.append([f"{'sysbench ' + name if name in SYSBENCH else name} ({unit})",
                     f"{host_value:.2f}", f"{ctr_value:.2f}", f"{ratio:.3f}",
                     f"{min(sides['container']):.2f} .. {max(sides['container']):.2f}"])
        if name in SYSBENCH:
            targets.append([f"sysbench {name} within 2 % of the host", f"{ratio - 1:+.1%}",
                            verdict(abs(ratio - 1), SYSBENCH_TOLERANCE)])
    section.add(
        f"Medians of {rounds} alternating rounds of {seconds} s. For TCP, \"host\" is the host's "
        "loopback (client and server on 127.0.0.1) and \"container\" the server in a container "
        "on the veth network with the client on the host; \"peer -> host\" is iperf3 -R.",
        table(["benchmark", "host", "container", "container / host", "container range"], rows),
        table(["target (issue 6)", "result", "verdict"], targets))
    section.data = {"rounds": rounds, "seconds": seconds, "results": results}
