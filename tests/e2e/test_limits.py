"""The limits of issue 16 on the real kernel, through a real ctrd, checked as an administrator
would: what the kernel says it enforces (cgroup files, tc's qdiscs), what a transfer measures
(dd for the disk, iperf3 for the veth, bounds loose enough for a loaded machine), a live change
with ``ctrctl update``, and the IO metrics the transfer leaves.

This host's cgroups are v1 (blkio, memsw) with a controller-less cgroup2: memory_high is refused
there, as v1 has nothing that throttles memory; the v2 side of each limit is tested against fake
trees (tests/unit/test_cgroups_limits.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from supervisor.model import iolimits
from supervisor.runtime.cgroups import open_driver
from tests.e2e.conftest import Daemon, link_exists
from tests.e2e.test_graders import free_port

MIB = 1 << 20


def whole_disk(path: Path) -> str:
    """``MAJ:MIN`` of the disk holding ``path`` (its partition's parent where it has one)."""
    device = os.stat(path).st_dev
    sysfs = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve()
    if (sysfs / "partition").exists():
        sysfs = sysfs.parent
    return (sysfs / "dev").read_text().strip()


def cgroup_file(name: str, file: str) -> str:
    """``file`` of the container's cgroup, whichever of its directories holds it."""
    for directory in open_driver("auto").open(name).directories():
        if (directory / file).is_file():
            return (directory / file).read_text()
    raise AssertionError(f"no {file} in the cgroup of {name}")


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def metrics_port(ctrd: Daemon) -> int:
    """ctrd's metrics on a free loopback port (a drop-in over the fixture's "off")."""
    port = free_port()
    (ctrd.config_dir / "ctrd.toml.d").mkdir(exist_ok=True)
    (ctrd.config_dir / "ctrd.toml.d" / "metrics.toml").write_text(
        f'metrics_listen = "127.0.0.1:{port}"\n')
    return port


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "lim-data"
    directory.mkdir()
    yield directory


def test_io_write_bps_throttles_dd_and_is_lifted_live(ctrd: Daemon, data_dir: Path) -> None:
    disk = whole_disk(data_dir)
    node = iolimits.node(disk) or disk
    port = metrics_port(ctrd)
    ctrd.define("lim-io", f"""
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[[mounts]]
source = "{data_dir}"
target = "/data"
[resources]
io_write_bps = {{ "{node}" = "4M" }}
[restart]
stop_timeout = "1s"
""")
    ctrd.start()
    ctrd.ctl("start", "lim-io")
    assert ctrd.status("lim-io")["resources"]["io_write_bps"] == {node: 4 * MIB}
    assert f"{disk} {4 * MIB}" in cgroup_file("lim-io", "blkio.throttle.write_bps_device")

    began = time.monotonic()
    ctrd.ctl("exec", "lim-io", "--", "dd", "if=/dev/zero", "of=/data/f", "bs=1M", "count=12",
             "oflag=direct")
    seconds = time.monotonic() - began  # ctrctl's own time makes the rate only lower
    assert (data_dir / "f").stat().st_size == 12 * MIB
    # 4 MiB/s, with the throttle's first slice of slack: unthrottled this disk does ~1 GB/s
    assert 12 * MIB / seconds < 6 * MIB, seconds

    metrics = scrape(port)
    labels = frozenset({("name", "lim-io"), ("device", node)})
    assert metrics[("container_fs_writes_bytes_total", labels)] >= 12 * MIB
    assert metrics[("container_fs_writes_total", labels)] >= 12

    ctrd.ctl("update", "lim-io", "--io-write-bps", f"{node}:max")
    assert disk not in cgroup_file("lim-io", "blkio.throttle.write_bps_device")
    assert ctrd.status("lim-io")["resources"]["io_write_bps"] == {node: "max"}


def test_io_limits_every_kind_and_a_missing_device(ctrd: Daemon, data_dir: Path) -> None:
    disk = whole_disk(data_dir)
    ctrd.define("lim-io2", f"""
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[resources]
io_read_bps = "{disk}:20M"
io_read_iops = "{disk}:500"
io_write_iops = {{ "{disk}" = 100 }}
[restart]
stop_timeout = "1s"
""")
    ctrd.start()
    ctrd.ctl("start", "lim-io2")
    assert f"{disk} {20 * MIB}" in cgroup_file("lim-io2", "blkio.throttle.read_bps_device")
    assert f"{disk} 500" in cgroup_file("lim-io2", "blkio.throttle.read_iops_device")
    assert f"{disk} 100" in cgroup_file("lim-io2", "blkio.throttle.write_iops_device")
    ctrd.ctl("update", "lim-io2", "--io-write-iops", f"{disk}:250")
    assert f"{disk} 250" in cgroup_file("lim-io2", "blkio.throttle.write_iops_device")
    bad = ctrd.ctl("update", "lim-io2", "--io-read-bps", "/dev/lim-nonexistent:1M", check=False)
    assert bad.returncode == 1
    assert "io_read_bps: block device /dev/lim-nonexistent: No such file or directory" in \
        bad.stderr


def test_memory_swap_is_memsw_and_memory_high_is_refused_on_v1(ctrd: Daemon) -> None:
    memsw = Path("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
    if not memsw.exists():
        pytest.skip("this kernel accounts no swap (memory.memsw.* missing)")
    ctrd.define("lim-mem", """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[resources]
memory_max = "64M"
memory_swap_max = "32M"
[restart]
stop_timeout = "1s"
""")
    ctrd.define("lim-high", """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[resources]
memory_high = "64M"
""")
    ctrd.start()
    ctrd.ctl("start", "lim-mem")
    assert int(cgroup_file("lim-mem", "memory.limit_in_bytes")) == 64 * MIB
    assert int(cgroup_file("lim-mem", "memory.memsw.limit_in_bytes")) == 96 * MIB
    ctrd.ctl("update", "lim-mem", "--memory-max", "128M")  # the swap allowance stays 32M
    assert int(cgroup_file("lim-mem", "memory.memsw.limit_in_bytes")) == 160 * MIB

    high = ctrd.ctl("start", "lim-high", check=False)
    assert high.returncode == 1
    assert "memory_high needs cgroup v2" in high.stderr
    assert ctrd.status("lim-high")["state"] == "failed"


# --- the veth's rates -----------------------------------------------------------------------

def qdiscs(ifname: str) -> list[dict[str, object]]:
    shown = subprocess.run(["tc", "-j", "qdisc", "show", "dev", ifname], capture_output=True,
                           text=True, check=True).stdout
    found: list[dict[str, object]] = json.loads(shown)
    return found


def root_rate(ifname: str) -> int:
    """Bytes per second of the tbf at the root of ``ifname``."""
    (tbf,) = [q for q in qdiscs(ifname) if q["kind"] == "tbf" and q.get("root")]
    options = tbf["options"]
    assert isinstance(options, dict)
    return int(options["rate"])


def _listening(port: int) -> bool:
    """Whether a TCP socket of this network namespace listens on ``port`` (/proc/net/tcp: the
    local address's port in hex, state 0A)."""
    with open("/proc/net/tcp") as table:
        return any(fields[1].endswith(f":{port:04X}") and fields[3] == "0A"
                   for fields in (line.split() for line in list(table)[1:]))


def _iperf_server(server: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """A one-off iperf3 server, once it listens (a client that comes first is refused)."""
    with open(log, "wb") as out:
        daemon = subprocess.Popen(["iperf3", "-s", "-1", "-B", server, "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not _listening(port):
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            daemon.wait()
            raise AssertionError(f"iperf3 -s did not listen on {server}:{port}: "
                                 f"{log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.01)
    return daemon


def iperf(pid: int, server: str, port: int, reverse: bool, log: Path) -> float:
    """Bits per second iperf3 measures from inside the network namespace of ``pid`` to a server
    on the host (``reverse``: the host sends), over 3 s. A run iperf3 itself reports as failed
    (its JSON has an "error" and no totals, now and then on a loaded host) is run again."""
    outputs = []
    for _ in range(3):
        daemon = _iperf_server(server, port, log)
        try:
            client = subprocess.run(
                ["nsenter", "-n", "-t", str(pid), "iperf3", "-c", server, "-p", str(port),
                 "-t", "3", "-J", "--connect-timeout", "5000", *(["-R"] if reverse else [])],
                capture_output=True, text=True, timeout=60)
        finally:
            daemon.kill()
            daemon.wait()
        outputs.append(client.stdout + client.stderr)
        with contextlib.suppress(ValueError, KeyError):
            return float(json.loads(client.stdout)["end"]["sum_received"]["bits_per_second"])
    raise AssertionError("iperf3 failed three times:\n" + "\n".join(o[-1500:] for o in outputs))


def test_network_rates_shape_both_directions_and_change_live(ctrd: Daemon,
                                                            tmp_path: Path) -> None:
    ctrd.define("lim-net", """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[network]
egress_rate = "20mbit"
ingress_rate = "10mbit"
[restart]
stop_timeout = "1s"
""")
    ctrd.start()
    ctrd.ctl("start", "lim-net")
    status = ctrd.status("lim-net")
    host_end, ifb = "ve-lim-net", "vi-lim-net"
    # what the container receives leaves through the host end; what it sends, through its IFB
    assert root_rate(host_end) == 10_000_000 // 8
    assert root_rate(ifb) == 20_000_000 // 8
    assert any(q["kind"] == "ingress" for q in qdiscs(host_end))

    gateway = str(next(IPv4Network(ctrd.env.pool).hosts()))  # the bridge's, on the host
    port = free_port()
    sent = iperf(status["pid"], gateway, port, reverse=False, log=tmp_path / "iperf3")
    received = iperf(status["pid"], gateway, port, reverse=True, log=tmp_path / "iperf3")
    # Unshaped a veth carries gigabits; shaped, at most the rate and most of it on a busy host
    assert 0.3 * 20e6 < sent < 1.15 * 20e6, sent
    assert 0.3 * 10e6 < received < 1.15 * 10e6, received

    ctrd.ctl("update", "lim-net", "--egress-rate", "5mbit", "--ingress-rate", "40mbit")
    assert root_rate(ifb) == 5_000_000 // 8 and root_rate(host_end) == 40_000_000 // 8
    assert ctrd.status("lim-net")["resources"] == {"egress_rate": "5mbit",
                                                   "ingress_rate": "40mbit"}
    sent = iperf(status["pid"], gateway, port, reverse=False, log=tmp_path / "iperf3")
    assert 0.3 * 5e6 < sent < 1.15 * 5e6, sent

    ctrd.ctl("stop", "lim-net")
    assert not link_exists(host_end) and not link_exists(ifb)


def test_a_rate_for_a_container_without_veth_is_refused(ctrd: Daemon) -> None:
    ctrd.define("lim-nonet", """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[network]
mode = "none"
[restart]
stop_timeout = "1s"
""")
    ctrd.start()
    ctrd.ctl("start", "lim-nonet")
    refused = ctrd.ctl("update", "lim-nonet", "--egress-rate", "1mbit", check=False)
    assert refused.returncode == 1
    assert 'has no veth to limit: egress_rate and ingress_rate need network.mode = "veth"' in \
        refused.stderr
