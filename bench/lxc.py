"""LXC containers as a peer: Debian's ``lxc`` with its busybox template, offline.

The template only copies the host's busybox and makes its links, so no network is needed. Every
container lives in a private lxcpath (``lxc-create -P``), never in /var/lib/lxc, and its config is
written here rather than taken from the template: the host's /usr bind-mounted read-only on /usr,
/lib and /lib64 as for ctr's runs (so the same sysbench binary runs), the CPU and memory limits
as v1 cgroup keys (this host's controllers), and either no network or a veth on a bridge the
benchmark made, never lxc-net's lxcbr0 (the package's service stays disabled).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import host
from bench.channel import Shell

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONFIG = """\
lxc.rootfs.path = dir:{rootfs}
lxc.uts.name = {name}
lxc.apparmor.profile = unconfined
lxc.signal.halt = SIGUSR1
lxc.autodev = 1
lxc.tty.max = 1
lxc.pty.max = 1
lxc.cap.drop = sys_module mac_admin mac_override sys_time
lxc.mount.auto = cgroup:mixed proc:mixed sys:ro
lxc.mount.entry = /usr usr none ro,bind 0 0
lxc.mount.entry = /usr/lib lib none ro,bind 0 0
lxc.mount.entry = /usr/lib64 lib64 none ro,bind 0 0
lxc.cgroup.cpuset.cpus = {cpus}
lxc.cgroup.memory.limit_in_bytes = {memory_mib}M
lxc.cgroup.cpu.cfs_period_us = 100000
lxc.cgroup.cpu.cfs_quota_us = {quota_us}
"""
VETH = """\
lxc.net.0.type = veth
lxc.net.0.link = {bridge}
lxc.net.0.veth.pair = {host_end}
lxc.net.0.flags = up
lxc.net.0.ipv4.address = {address}
lxc.net.0.ipv4.gateway = {gateway}
"""


@dataclass(frozen=True)
class Veth:
    bridge: str
    host_end: str
    address: str  # CIDR
    gateway: str


class Lxc:
    """One container: ``create()``, ``start()`` (timed), ``shell()``, ``destroy()``."""

    def __init__(self, lxcpath: Path, name: str, cpus: str, memory_mib: int,
                 veth: Veth | None = None, binds: dict[Path, str] | None = None) -> None:
        """``binds``: host directory -> path inside, read-write."""
        self.lxcpath = lxcpath
        self.name = name
        self.cpus = cpus
        self.memory_mib = memory_mib
        self.veth = veth
        self.binds = binds or {}
        self._shells: list[Shell] = []

    def _lxc(self, tool: str, *args: str) -> list[str]:
        return [f"lxc-{tool}", "-P", str(self.lxcpath), "-n", self.name, *args]

    def create(self) -> None:
        subprocess.run(self._lxc("create", "-t", "busybox"), check=True,
                       stdin=subprocess.DEVNULL, capture_output=True)
        config = CONFIG.format(rootfs=self.lxcpath / self.name / "rootfs", name=self.name,
                               cpus=self.cpus, memory_mib=self.memory_mib, quota_us=100000)
        if self.veth is None:
            config += "lxc.net.0.type = empty\n"
        else:
            config += VETH.format(**vars(self.veth))
        for source, target in self.binds.items():
            config += f"lxc.mount.entry = {source} {target.lstrip('/')} none bind,create=dir 0 0\n"
        (self.lxcpath / self.name / "config").write_text(config)
        # The template's rcS asks for DHCP (lxc-net's dnsmasq), whose deconfig step would flush
        # the static address LXC gave eth0: the benchmark's bridge serves no DHCP.
        rcs = self.lxcpath / self.name / "rootfs" / "etc" / "init.d" / "rcS"
        rcs.write_text("".join(line for line in rcs.read_text().splitlines(keepends=True)
                               if "udhcpc" not in line))

    def start(self) -> float:
        """Seconds from ``lxc-start -d`` until the container's init runs (state RUNNING)."""
        begin = time.perf_counter()
        subprocess.run(self._lxc("start", "-d"), check=True, stdin=subprocess.DEVNULL,
                       capture_output=True)
        subprocess.run(self._lxc("wait", "-s", "RUNNING", "-t", "30"), check=True,
                       stdin=subprocess.DEVNULL, capture_output=True)
        return time.perf_counter() - begin

    def shell(self) -> Shell:
        """A shell attached to the running container (its namespaces and cgroups)."""
        process = subprocess.Popen(self._lxc("attach", "--", "/bin/sh"), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        shell = Shell(process, f"lxc {self.name}")
        self._shells.append(shell)
        return shell

    def pids(self) -> list[int]:
        """The monitor (``lxc-start``) and every process in the container."""
        found = []
        for group in (f"lxc.monitor.{self.name}", f"lxc.payload.{self.name}"):
            with contextlib.suppress(OSError):
                found += [int(pid) for pid in
                          (CGROUP_ROOT / "pids" / group / "cgroup.procs").read_text().split()]
        return found

    def destroy(self) -> None:
        """Kill and remove it; safe to call for a container never created or already gone."""
        for shell in self._shells:
            with contextlib.suppress(OSError):
                shell.process.kill()
            shell.process.wait()
        if (self.lxcpath / self.name).exists():
            subprocess.run(self._lxc("stop", "-k"), stdin=subprocess.DEVNULL,
                           capture_output=True)
            subprocess.run(self._lxc("destroy", "-f"), stdin=subprocess.DEVNULL,
                           capture_output=True)


def leftovers(prefix: str) -> list[Path]:
    """This run's LXC cgroups still on the host (monitor and payload, every hierarchy)."""
    return sorted(CGROUP_ROOT.glob(f"*/lxc.*.{prefix}*"))


def force_clean(prefix: str) -> None:
    """After a failure: SIGKILL what runs in this run's LXC cgroups, then remove them."""
    for _ in range(50):
        if not (left := leftovers(prefix)):
            return
        for path in left:
            with contextlib.suppress(OSError):
                host.kill_all(int(pid) for pid in (path / "cgroup.procs").read_text().split())
            with contextlib.suppress(OSError):
                path.rmdir()
        time.sleep(0.1)


@contextlib.contextmanager
def pivot_cgroups_removed() -> Iterator[None]:
    """lxc-start leaves an empty ``lxc.pivot`` cgroup in every hierarchy; remove the ones that
    appeared during the block (a colleague's, there before, stays)."""
    before = set(CGROUP_ROOT.glob("*/lxc.pivot"))
    try:
        yield
    finally:
        for path in set(CGROUP_ROOT.glob("*/lxc.pivot")) - before:
            with contextlib.suppress(OSError):
                path.rmdir()
