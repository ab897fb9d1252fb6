"""Part 5: containers against VMs, LXC and the host (issue 17's comparison, the lecture's lab).

Four environments, each given the same CPU (host CPU 1, alone) and, where it can be limited,
512 MiB: the host itself (``taskset -c 1``, no memory limit), a ctr container
(``--cpuset-cpus 1 --cpu-quota 100% --memory-max 512M``), an LXC container from Debian's busybox
template (the same as v1 cgroup keys) and a QEMU virtual machine (``-smp 1 -m 512``, the whole
QEMU process pinned to CPU 1) booting Debian's kernel (bench/guest.py). The load generator
(wrk) runs on CPU 0. Every environment runs the same binaries: the host's sysbench (bind-mounted
/usr, or copied into the initramfs with its libraries) and the host's static busybox.

1. Start-up: N instances of each, one after another and kept running, the i-th of every kind in
   the same round; then the memory each one holds (PSS of its processes).
2. sysbench's five attributes (cpu, fileio random read and write on a 256 MiB file set, memory,
   threads), in alternating rounds, the order of the environments rotated each round.
3. Saturation throughput of busybox httpd serving one small page, wrk with 16 connections for
   the whole run, again in rotated rounds: the host over loopback, the containers over a veth
   and bridge, the VM over a tap on a bridge (virtio-net).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from bench import guest, host, lxc, vm
from bench.channel import Shell
from bench.common import CTRCTL, IMAGE, Section, median, ms, table
from bench.daemon import Ctrd, free_port
from bench.overhead import HOST_BINARIES

CPUS, LOAD_CPU, MEMORY_MIB = "1", "0", 512
LIMITS = ["--cpuset-cpus", CPUS, "--cpu-quota", "100%", "--memory-max", f"{MEMORY_MIB}M"]
ENVIRONMENTS = ("host", "ctr", "lxc", "vm")
TOOLS = ("lxc-create", "qemu-system-x86_64", "wrk", "sysbench", "taskset")
FILEIO = "--file-total-size=256M"
CPU_EVENTS = 10000  # the lab's "CPU total time": sysbench cpu's classic 10,000 events
WRK_CONNECTIONS = 16
PAGE = "<html><head><title>ctr</title></head><body>" + "containers against VMs " * 24 + \
    "</body></html>"
IDLE = f"""\
[container]
image = "{IMAGE}"
command = ["/bin/sleep", "1000000"]
[network]
mode = "none"
[resources]
memory_max = "{MEMORY_MIB}M"
cpu_quota = "100%"
cpuset_cpus = "{CPUS}"
[restart]
stop_signal = "SIGKILL"
"""


@dataclass(frozen=True)
class Test:
    argv: str  # sysbench's arguments; {s} is the run's seconds
    pattern: str
    unit: str


SYSBENCH = {
    "cpu": Test("cpu --threads=1 --time={s} run", r"events per second:\s*([\d.]+)",
                "events/s"),
    "fileio read": Test(f"fileio {FILEIO} --file-test-mode=rndrd --time={{s}} run",
                        r"read, MiB/s:\s*([\d.]+)", "MiB/s"),
    "fileio write": Test(f"fileio {FILEIO} --file-test-mode=rndwr --time={{s}} run",
                         r"written, MiB/s:\s*([\d.]+)", "MiB/s"),
    "memory": Test("memory --threads=1 --memory-block-size=1M --memory-total-size=10000G "
                   "--time={s} run", r"\(([\d.]+) MiB/sec\)", "MiB/s"),
    "threads": Test("threads --threads=8 --time={s} run", r"total number of events:\s*(\d+)",
                    "events/s"),
}


@dataclass
class Instance:
    """One environment as the sysbench and web parts see it."""

    shell: Shell
    fileio_dir: str  # inside the instance
    www_dir: str
    url: str


@dataclass
class Plan:
    prefix: str
    workdir: Path
    bridge_net: IPv4Network  # the bridge this part makes for LXC and the VM
    ctrctl_net: IPv4Network  # ctrctl run's own bridge
    ctrd_pool: str
    guest: guest.Guest
    accel: str
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br5"

    def address(self, net: IPv4Network, index: int) -> str:
        """The index-th host address of ``net`` (1 is the gateway)."""
        return str(net.network_address + index)


def measure(prefix: str, pools: tuple[str, str, str], rounds: int, seconds: int,
            n: int) -> Section:
    section = Section("Containers against VMs, LXC and the host")
    if missing := [tool for tool in TOOLS if not shutil.which(tool)]:
        raise RuntimeError(f"not installed: {', '.join(missing)} (make bench installs them)")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-versus-"))
    plan = Plan(prefix, workdir, IPv4Network(pools[0]), IPv4Network(pools[1]), pools[2],
                guest.build(), vm.accelerator())
    data: dict[str, Any] = {"rounds": rounds, "seconds": seconds, "n": n, "accel": plan.accel,
                            "kernel": plan.guest.version, "load_start": _load()}
    try:
        with lxc.pivot_cgroups_removed(), plan.stack:
            data["start"] = start_sequence(plan, n)
            instances = bring_up(plan, seconds)
            data["sysbench"] = sysbench_rounds(instances, rounds, seconds)
            data["web"] = web_rounds(instances, rounds, seconds)
    finally:
        lxc.force_clean(prefix)
        host.sweep(prefix, workdir, section.add)
    data["load_end"] = _load()
    report(section, data)
    return section


def _load() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def pss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += host.memory_kib(pid)["Pss"]
    return total


# -- 1. start-up and footprint -------------------------------------------------------------

def start_sequence(plan: Plan, n: int) -> dict[str, dict[str, Any]]:
    """N of each kind started one after another (round i starts the i-th of every kind); then
    the memory each holds, all N still running."""
    with Ctrd(plan.prefix, f"{plan.prefix}br7", plan.ctrd_pool, {"idle": IDLE}) as ctrd, \
            contextlib.ExitStack() as running:
        ctrd_before = host.memory_kib(ctrd.pid)["Rss"]
        lxc_path = plan.workdir / "lxc-idle"
        lxc_path.mkdir()
        containers = [lxc.Lxc(lxc_path, f"{plan.prefix}li{i}", CPUS, MEMORY_MIB)
                      for i in range(n)]
        for container in containers:
            running.callback(container.destroy)
            container.create()  # the template's copy is not part of a start
        hosts: list[subprocess.Popen[bytes]] = []
        vms = [vm.Vm(plan.guest, f"{plan.prefix}vi{i}", CPUS, MEMORY_MIB, plan.accel)
               for i in range(n)]
        for machine in vms:
            running.callback(machine.stop)
        starts: dict[str, list[float]] = {name: [] for name in ENVIRONMENTS}
        uptimes = []
        for i in range(n):
            starts["host"].append(start_host_process(hosts, running))
            begin = time.perf_counter()
            ctrd.launch("idle", f"{plan.prefix}ci{i}")
            starts["ctr"].append(time.perf_counter() - begin)
            starts["lxc"].append(containers[i].start())
            starts["vm"].append(vms[i].start())
            uptimes.append(vms[i].guest_uptime_s)
            vms[i].ready()
        time.sleep(2)  # let the last ones settle (the VM's first seconds, lazy allocations)
        guest_used = [guest_used_kib(machine.ready_shell()) for machine in vms]
        shims = ctrd.shims()
        pids = {
            "host": [process.pid for process in hosts],
            "ctr": shims + [pid for shim in shims for pid in host.children(shim)],
            "lxc": [pid for container in containers for pid in container.pids()],
            "vm": [machine.pid for machine in vms],
        }
        ctrd_growth = max(0, host.memory_kib(ctrd.pid)["Rss"] - ctrd_before)
        result: dict[str, dict[str, Any]] = {
            name: {"start_s": starts[name], "pss_kib": pss_kib(pids[name]) / n}
            for name in ENVIRONMENTS}
    result["ctr"]["ctrd_rss_kib"] = ctrd_growth / n
    result["ctr"]["pss_kib"] += ctrd_growth / n
    result["vm"]["guest_uptime_s"] = uptimes
    result["vm"]["guest_used_kib"] = guest_used
    return result


def guest_used_kib(shell: Shell) -> int:
    """What the guest kernel has handed out of its RAM (MemTotal - MemFree: page cache and the
    unpacked initramfs included), the part of QEMU's footprint that is the guest's own."""
    meminfo = dict(re.findall(r"(\w+):\s+(\d+) kB", shell.run("cat /proc/meminfo", 30)))
    return int(meminfo["MemTotal"]) - int(meminfo["MemFree"])


def start_host_process(processes: list[subprocess.Popen[bytes]],
                       running: contextlib.ExitStack) -> float:
    """A process on the host, from fork to its first line: the baseline of every start."""
    begin = time.perf_counter()
    process = subprocess.Popen(
        ["taskset", "-c", CPUS, "/bin/busybox", "sh", "-c",
         "echo @@UP; exec /bin/busybox sleep 1000000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    running.callback(_kill, process)
    Shell(process, "host process").wait_for("@@UP", 10)
    processes.append(process)
    return time.perf_counter() - begin


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


# -- the long-lived instances of parts 2 and 3 ---------------------------------------------

def bring_up(plan: Plan, seconds: int) -> dict[str, Instance]:
    """One instance of each with a network and a directory for sysbench's files; closed by
    ``plan.stack``."""
    tap = f"{plan.prefix}t0"
    network(plan, tap)
    instances = {"host": host_instance(plan), "ctr": ctr_instance(plan),
                 "lxc": lxc_instance(plan), "vm": vm_instance(plan, tap)}
    for name, instance in instances.items():
        instance.shell.run(f"mkdir -p {instance.www_dir} && echo '{PAGE}' > "
                           f"{instance.www_dir}/index.html", 30)
        instance.shell.run(f"cd {instance.fileio_dir} && /usr/bin/sysbench {FILEIO} "
                           "fileio prepare", 600)
        port = instance.url.rsplit(":", 1)[1].split("/")[0]
        bind = "127.0.0.1:" + port if name == "host" else port
        pid = instance.shell.run(f"/bin/busybox httpd -f -p {bind} -h {instance.www_dir} "
                                 ">/dev/null 2>&1 & echo $!", 30).split()[-1]
        if name == "host":
            plan.stack.callback(host.kill_all, [int(pid)])
        wait_for_http(instance.url, 60 + 10 * seconds)
    return instances


def network(plan: Plan, tap: str) -> None:
    """The bridge for LXC and the VM, with the gateway address, and the VM's tap on it."""
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        ip.link("add", ifname=plan.bridge, kind="bridge")
        plan.stack.callback(_delete_link, plan.bridge)
        (bridge,) = ip.link_lookup(ifname=plan.bridge)
        ip.addr("add", index=bridge, address=plan.address(plan.bridge_net, 1),
                prefixlen=plan.bridge_net.prefixlen)
        ip.link("set", index=bridge, state="up")
        ip.link("add", ifname=tap, kind="tuntap", mode="tap")
        plan.stack.callback(_delete_link, tap)
        (index,) = ip.link_lookup(ifname=tap)
        ip.link("set", index=index, master=bridge, state="up")


def _delete_link(name: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as ip, contextlib.suppress(Exception):
        ip.link("del", ifname=name)


def _shell_process(argv: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _closing(plan: Plan, process: subprocess.Popen[bytes], name: str) -> Shell:
    """A Shell over ``process``, ended with the plan: stdin closed (the shell exits; ctrctl
    then tears its container down), SIGKILL if it lingers."""
    def close() -> None:
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            _kill(process)
    plan.stack.callback(close)
    return Shell(process, name)


def host_instance(plan: Plan) -> Instance:
    base = plan.workdir / "host"
    (base / "fileio").mkdir(parents=True)
    shell = _closing(plan, _shell_process(["taskset", "-c", CPUS, "/bin/busybox", "sh"],
                                          cwd=base), "host")
    return Instance(shell, str(base / "fileio"), str(base / "www"),
                    f"http://127.0.0.1:{free_port()}/index.html")


def ctr_instance(plan: Plan) -> Instance:
    fileio = plan.workdir / "ctr-fileio"
    fileio.mkdir()
    address = plan.address(plan.ctrctl_net, 2)
    argv = [CTRCTL, "--state-dir", str(plan.workdir / "ctr-state"), "--data-dir",
            str(plan.workdir / "ctr-data"), "run", "--rm", "-i", "--name", f"{plan.prefix}vs",
            "--rootfs", str(IMAGE), "--network", "veth", "--pool", str(plan.ctrctl_net),
            "--bridge", f"{plan.prefix}br6", "--address",
            f"{address}/{plan.ctrctl_net.prefixlen}", *LIMITS, *HOST_BINARIES,
            "--mount", f"{fileio}:/work", "--", "/bin/sh"]
    shell = _closing(plan, _shell_process(argv), "ctr")
    return Instance(shell, "/work", "/tmp/www", f"http://{address}:80/index.html")


def lxc_instance(plan: Plan) -> Instance:
    fileio = plan.workdir / "lxc-fileio"
    fileio.mkdir()
    lxc_path = plan.workdir / "lxc"
    lxc_path.mkdir()
    address = plan.address(plan.bridge_net, 2)
    container = lxc.Lxc(lxc_path, f"{plan.prefix}ls", CPUS, MEMORY_MIB, lxc.Veth(
        plan.bridge, f"{plan.prefix}l0", f"{address}/{plan.bridge_net.prefixlen}",
        plan.address(plan.bridge_net, 1)), {fileio: "/work"})
    plan.stack.callback(container.destroy)
    container.create()
    container.start()
    return Instance(container.shell(), "/work", "/tmp/www", f"http://{address}:80/index.html")


def vm_instance(plan: Plan, tap: str) -> Instance:
    disk = plan.workdir / "vm-disk.img"
    with open(disk, "wb") as f:
        f.truncate(1 << 30)  # sparse; ext4 like the host's file system
    subprocess.run(["mkfs.ext4", "-q", "-F", str(disk)], check=True)
    address = plan.address(plan.bridge_net, 3)
    machine = vm.Vm(plan.guest, f"{plan.prefix}vs", CPUS, MEMORY_MIB, plan.accel, disk, tap,
                    (f"{address}/{plan.bridge_net.prefixlen}", plan.address(plan.bridge_net, 1)))
    plan.stack.callback(machine.stop)
    machine.start()
    return Instance(machine.ready(), "/work", "/tmp/www", f"http://{address}:80/index.html")


def wait_for_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                answer.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# -- 2. sysbench, 3. web -------------------------------------------------------------------

def rotated(round_index: int) -> list[str]:
    shift = round_index % len(ENVIRONMENTS)
    return [*ENVIRONMENTS[shift:], *ENVIRONMENTS[:shift]]


def sysbench_rounds(instances: dict[str, Instance], rounds: int,
                    seconds: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {
        test: {name: [] for name in ENVIRONMENTS} for test in SYSBENCH}
    for r in range(rounds):
        for test, spec in SYSBENCH.items():
            for name in rotated(r):
                instance = instances[name]
                output = instance.shell.run(
                    f"cd {instance.fileio_dir} && /usr/bin/sysbench "
                    f"{spec.argv.format(s=seconds)}", 120 + 10 * seconds)
                results[test][name].append(parse(test, spec, output))
    return results


def parse(test: str, spec: Test, output: str) -> float:
    match = re.search(spec.pattern, output)
    if not match:
        raise RuntimeError(f"sysbench {test}: no result in\n{output}")
    value = float(match.group(1))
    if test == "threads":  # events over the run's own total time
        total = re.search(r"total time:\s*([\d.]+)s", output)
        assert total is not None, output
        value /= float(total.group(1))
    return value


@dataclass(frozen=True)
class WrkResult:
    requests_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk(url: str, seconds: int) -> WrkResult:
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s",
            "--timeout", "5s", "--latency", url]
    out = subprocess.run(argv, check=True, capture_output=True, text=True,
                         timeout=seconds + 60).stdout

    def number(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, out)
        if match is None and default is None:
            raise RuntimeError(f"no {pattern!r} in wrk's output:\n{out}")
        return match.group(1) if match else str(default)

    def latency(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(number(r"Non-2xx or 3xx responses: (\d+)", "0"))
    return WrkResult(float(number(r"Requests/sec:\s*([\d.]+)")), latency("50%"),
                     latency("99%"), errors)


def web_rounds(instances: dict[str, Instance], rounds: int,
               seconds: int) -> dict[str, list[dict[str, float]]]:
    for instance in instances.values():
        wrk(instance.url, 1)  # warm-up, untimed
    results: dict[str, list[dict[str, float]]] = {name: [] for name in ENVIRONMENTS}
    for r in range(rounds):
        for name in rotated(r):
            results[name].append(vars(wrk(instances[name].url, seconds)))
    return results


# -- report --------------------------------------------------------------------------------

LABELS = {"host": "host", "ctr": "ctr", "lxc": "LXC", "vm": "VM"}


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / median(values) if values else 0.0


def report(section: Section, data: dict[str, Any]) -> None:
    rounds, seconds, n = data["rounds"], data["seconds"], data["n"]
    accel = data["accel"]
    vm_label = f"VM ({accel.upper()})"
    results = data["sysbench"]
    rows: list[list[object]] = []
    for test, spec in SYSBENCH.items():
        values = {name: median(results[test][name]) for name in ENVIRONMENTS}
        rows.append([f"{test} ({spec.unit})", *(f"{values[name]:.1f}" for name in ENVIRONMENTS),
                     *(f"{values[name] / values['host']:.3f}" for name in ENVIRONMENTS[1:]),
                     f"{max(spread(results[test][name]) for name in ENVIRONMENTS):.1%}"])
        if test == "cpu":
            rows.append([f"CPU total time, {CPU_EVENTS} events (s)",
                         *(f"{CPU_EVENTS / values[name]:.2f}" for name in ENVIRONMENTS),
                         *(f"{values['host'] / values[name]:.3f}" for name in ENVIRONMENTS[1:]),
                         ""])
    headers = ["sysbench", "host", "ctr", "LXC", vm_label, "ctr / host", "LXC / host",
               "VM / host", "spread"]
    start = data["start"]
    start_rows = []
    for name in ENVIRONMENTS:
        samples = start[name]["start_s"]
        start_rows.append([LABELS[name] if name != "vm" else vm_label, ms(median(samples)),
                           ms(min(samples)), ms(max(samples)), ms(samples[0]), ms(samples[-1]),
                           f"{median(samples) / median(start['host']['start_s']):.0f}",
                           f"{start[name]['pss_kib'] / 1024:.2f}"])
    web = data["web"]
    web_rows = []
    host_rps = median([run["requests_s"] for run in web["host"]])
    for name in ENVIRONMENTS:
        runs = web[name]
        rps = [run["requests_s"] for run in runs]
        web_rows.append([LABELS[name] if name != "vm" else vm_label, f"{median(rps):.0f}",
                         f"{min(rps):.0f} .. {max(rps):.0f}", f"{median(rps) / host_rps:.3f}",
                         f"{median([run['p50_ms'] for run in runs]):.2f}",
                         f"{median([run['p99_ms'] for run in runs]):.2f}",
                         f"{sum(run['errors'] for run in runs):.0f}"])
    uptime = median(start["vm"]["guest_uptime_s"])
    guest_mib = median(start["vm"]["guest_used_kib"]) / 1024
    section.add(
        f"Each environment: host CPU {CPUS} only, {MEMORY_MIB} MiB where a limit exists (not on "
        f"the host); the VM is QEMU with {accel.upper()}, kernel {data['kernel']}. Load average "
        f"{' '.join(map(str, data['load_start']))} at the start, "
        f"{' '.join(map(str, data['load_end']))} at the end.",
        f"sysbench: medians of {rounds} rounds of {seconds} s, the environments' order rotated "
        "each round; ratios are to the host (above 1: more than the host; for the CPU total "
        "time that is slower); spread is (max - min) / median of the noisiest "
        "environment's rounds.",
        table(headers, rows),
        f"Start-up: {n} instances of each, one after another and all kept running (the i-th of "
        "every kind in the same round); ms from the command to the instance's first process "
        "running (host: fork to its first line; ctr: ctrd API request to RUNNING; LXC: "
        "`lxc-start -d` + `lxc-wait -s RUNNING`; VM: QEMU's exec to /init's first line on the "
        f"serial console, of which the guest kernel counted {uptime:.2f} s). Memory: PSS of the "
        "instance's processes with all N running (ctr: shim and PID 1, plus ctrd's RSS growth "
        "per container; LXC: monitor and container; VM: the QEMU process, guest RAM included, "
        f"of which the guest kernel had handed out {guest_mib:.0f} MiB: MemTotal - MemFree).",
        table(["environment", "median", "min", "max", "first", "last", "x host",
               "memory MiB"], start_rows),
        f"Web: busybox httpd serving a {len(PAGE) + 1}-byte page, `wrk -t1 -c{WRK_CONNECTIONS} "
        f"-d{seconds}s` on CPU {LOAD_CPU}; {rounds} rotated rounds, requests/s and latency ms "
        "(medians), errors summed over the rounds.",
        table(["environment", "requests/s", "range", "/ host", "p50", "p99", "errors"],
              web_rows))
    section.data = {"versus": data}

