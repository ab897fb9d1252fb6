"""Part "kernel": the system calls of a container's set-up whose cost grows with the containers
already running, in ctr, crun and runc.

- pivot_root(2) visits every thread of the system (``chroot_fs_refs`` moves each one whose root
  or working directory was the old root), under the task list's lock; each container under ctrd
  is two threads, its PID 1 and its ctr-shim.
- Mounting a new sysfs first searches every sysfs superblock on the host for one of the caller's
  network namespace; each container's namespace has one.
- Loading a seccomp filter grows with the filters loaded on the host.

Stand-ins take the place of containers: forked, paused processes of two threads (as a PID 1 and
its shim count), each in a network and a mount namespace of its own with a sysfs mounted there
and ctr's default seccomp filter loaded. At each count, strace -T times these calls in
``ctrctl run --rm`` (no daemon: the direct way, whose PID 1 mounts its own sysfs), ``crun run``
and ``runc run`` of the start part's bundle (which has no seccomp profile). Usage (as root, from
the repository): ``.venv/bin/python -m bench.kernel [--containers 0,1000,2000] [--runs 12]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

from bench import host, peers
from bench.common import Section, median, run_id, table
from supervisor.model.spec import SecuritySpec
from supervisor.runtime import security, syscalls
from supervisor.runtime.seccomp import Program, install

CONTAINERS = (0, 1000, 2000)
RUNS = 12
CALLS = {  # each call timed, and how strace prints it
    "pivot_root": re.compile(r"pivot_root\(.*\)\s+= 0 <([0-9.]+)>"),
    "sysfs": re.compile(r'mount\("sysfs", .*\)\s+= 0 <([0-9.]+)>'),
    "seccomp": re.compile(r"seccomp\(SECCOMP_SET_MODE_FILTER, .*\)\s+= 0 <([0-9.]+)>"),
}


@dataclass
class Point:
    """One count of stand-ins: the host's threads then, and each runtime's calls' seconds."""

    containers: int
    threads: int
    seconds: dict[str, dict[str, list[float]]]  # runtime -> call -> samples


def threads_on_host() -> int:
    """The kernel's count of scheduling entities (threads), the 4th field of /proc/loadavg."""
    return int(Path("/proc/loadavg").read_text().split()[3].partition("/")[2])


def _stand_in(sys_dir: str, program: Program) -> NoReturn:
    """In a forked child: a container as the kernel counts it, until killed."""
    try:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        syscalls.unshare(syscalls.CLONE_NEWNS | syscalls.CLONE_NEWNET)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        syscalls.mount("sysfs", sys_dir, "sysfs", syscalls.MS_RDONLY)
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
        install(program)
        threading.Thread(target=threading.Event().wait, daemon=True).start()  # the second
        while True:
            signal.pause()
    finally:
        os._exit(0)


@contextlib.contextmanager
def stand_ins(count: int, sys_dir: str) -> Iterator[None]:
    """``count`` containers' stand-ins for the duration, killed (and reaped) also on failure;
    they die with this process too."""
    program = security.confinement(SecuritySpec(), privileged=False).seccomp
    assert program is not None
    pids: list[int] = []
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                _stand_in(sys_dir, program)
            pids.append(pid)
        yield
    finally:
        host.kill_all(pids)
        for pid in pids:
            os.waitpid(pid, 0)


def call_seconds(command: Sequence[str], log: Path) -> dict[str, float]:
    """The time of each call of ``CALLS`` that ``command`` and its children made, by strace
    (one made more than once is not counted)."""
    subprocess.run(["strace", "-f", "-T", "-qq", "-e", "trace=pivot_root,mount,seccomp",
                    "-o", str(log), *command], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = log.read_text()
    found = {call: pattern.findall(text) for call, pattern in CALLS.items()}
    return {call: float(times[0]) for call, times in found.items() if len(times) == 1}


def measure(prefix: str, pool: str, counts: Sequence[int] = CONTAINERS,
            runs: int = RUNS) -> Section:
    section = Section("The kernel's calls that grow with the containers running")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-kernel-"))
    points: list[Point] = []
    try:
        bundle = peers.oci_bundle(workdir)
        runs_of = peers.peers(bundle, prefix)
        commands = {
            "ctr": peers.ctrctl_run(workdir / "state", workdir / "data", pool,
                                    f"{prefix}brk", prefix, "none"),
            "crun": runs_of["crun run"], "runc": runs_of["runc run"]}
        sys_dir = workdir / "sys"
        sys_dir.mkdir()
        for count in counts:
            with stand_ins(count, str(sys_dir)):
                seconds: dict[str, dict[str, list[float]]] = {
                    name: {call: [] for call in CALLS} for name in commands}
                for _ in range(runs):  # interleaved, as every part here
                    for name, make in commands.items():
                        for call, elapsed in call_seconds(make(), workdir / "strace").items():
                            seconds[name][call].append(elapsed)
                points.append(Point(count, threads_on_host(), seconds))
    finally:
        host.sweep(prefix, workdir, section.add)
    report(section, points, runs)
    return section


def report(section: Section, points: list[Point], runs: int) -> None:
    names = list(points[0].seconds)

    def cell(point: Point, name: str, call: str) -> str:
        samples, first = point.seconds[name][call], points[0].seconds[name][call]
        if not samples or not first:
            return "-"
        return f"{median(samples) * 1000:.3f} ({median(samples) / median(first):.0f} x)"

    section.add(
        f"{runs} runs of each runtime at each count, interleaved; the median of each call in ms "
        "as strace -T times it, and in brackets against the first count; \"-\": not made.",
        table(["containers", "threads on the host", "call", *names],
              [[point.containers, point.threads, call,
                *(cell(point, name, call) for name in names)]
               for point in points for call in CALLS]))
    section.data = {"runs": runs, "points": [asdict(point) for point in points]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.kernel", description=__doc__.splitlines()[0])
    parser.add_argument("--containers", default=",".join(map(str, CONTAINERS)),
                        help="stand-ins of running containers, comma-separated counts")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)
    prefix = run_id()
    section = measure(prefix, "10.231.192.0/20",
                      [int(n) for n in args.containers.split(",")], args.runs)
    print(section.markdown())
    return 0 if not host.leftovers(prefix) else 1


if __name__ == "__main__":
    raise SystemExit(main())
