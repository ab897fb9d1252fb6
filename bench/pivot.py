"""Part "pivot": what one pivot_root(2) costs against the number of threads on the host, in ctr,
crun and runc.

The kernel's pivot_root visits every thread of the system (``chroot_fs_refs`` moves each one
whose root or working directory was the old root to the new one), holding the task list's lock,
so its time grows with the host's threads whichever runtime calls it. Each container under ctrd
adds two threads (its PID 1 and its ctr-shim), so this is a part of the density part's start at
N that no runtime avoids while it pivots (``--no-pivot``, a chroot, would leave the old root
under the container's and is not safe).

Idle processes (forked, paused, SIGKILLed at the end) stand in for containers. At each count,
strace -T times the pivot_root of ``ctrctl run --rm`` (no daemon: its PID 1 is the one ctrd's
would be), ``crun run`` and ``runc run`` of the start part's bundle. Usage (as root, from the
repository): ``.venv/bin/python -m bench.pivot [--idle 0,2000,4000] [--runs 12]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import host, peers
from bench.common import Section, median, run_id, table
from supervisor.runtime import syscalls

IDLE = (0, 2000, 4000)
RUNS = 12
_PIVOT = re.compile(r"pivot_root\(.*\)\s+= 0 <([0-9.]+)>")


@dataclass
class Point:
    """One count of idle processes: the host's threads then, and each runtime's pivot_root."""

    idle: int
    threads: int
    pivot_s: dict[str, list[float]]


def threads_on_host() -> int:
    """The kernel's count of scheduling entities (threads), the 4th field of /proc/loadavg."""
    return int(Path("/proc/loadavg").read_text().split()[3].partition("/")[2])


@contextlib.contextmanager
def idle_processes(count: int) -> Iterator[None]:
    """``count`` paused children for the duration, killed (and reaped) also on failure; they die
    with this process too."""
    pids: list[int] = []
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                try:
                    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
                    while True:
                        signal.pause()
                finally:
                    os._exit(0)
            pids.append(pid)
        yield
    finally:
        host.kill_all(pids)
        for pid in pids:
            os.waitpid(pid, 0)


def pivot_seconds(command: Sequence[str], log: Path) -> float:
    """The time of the one successful pivot_root in ``command`` and its children, by strace."""
    subprocess.run(["strace", "-f", "-T", "-qq", "-e", "trace=pivot_root", "-o", str(log),
                    *command], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    found = _PIVOT.findall(log.read_text())
    if len(found) != 1:
        raise RuntimeError(f"{command[0]}: {len(found)} pivot_root calls in {log}")
    return float(found[0])


def measure(prefix: str, pool: str, idle: Sequence[int] = IDLE, runs: int = RUNS) -> Section:
    section = Section("pivot_root against the host's threads")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-pivot-"))
    points: list[Point] = []
    try:
        bundle = peers.oci_bundle(workdir)
        runs_of = peers.peers(bundle, prefix)
        commands = {
            "ctr": peers.ctrctl_run(workdir / "state", workdir / "data", pool,
                                    f"{prefix}brp", prefix, "none"),
            "crun": runs_of["crun run"], "runc": runs_of["runc run"]}
        for count in idle:
            with idle_processes(count):
                samples: dict[str, list[float]] = {name: [] for name in commands}
                for _ in range(runs):  # interleaved, as every part here
                    for name, make in commands.items():
                        samples[name].append(pivot_seconds(make(), workdir / "strace.log"))
                points.append(Point(count, threads_on_host(), samples))
    finally:
        host.sweep(prefix, workdir, section.add)
    report(section, points, runs)
    return section


def report(section: Section, points: list[Point], runs: int) -> None:
    names = list(points[0].pivot_s)
    base = {name: median(points[0].pivot_s[name]) for name in names}
    rows = []
    for point in points:
        medians = {name: median(point.pivot_s[name]) for name in names}
        rows.append([point.idle, point.threads,
                     *(f"{medians[name] * 1000:.3f} ({medians[name] / base[name]:.0f} x)"
                       for name in names)])
    section.add(
        f"{runs} runs of each at each count, interleaved; the median pivot_root in ms as strace "
        "-T times it, and in brackets against the first row.",
        table(["idle processes", "threads on the host", *names], rows))
    section.data = {"runs": runs, "points": [asdict(point) for point in points]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.pivot", description=__doc__.splitlines()[0])
    parser.add_argument("--idle", default=",".join(map(str, IDLE)),
                        help="idle processes added, comma-separated")
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args(argv)
    prefix = run_id()
    section = measure(prefix, "10.231.240.0/20", [int(n) for n in args.idle.split(",")],
                      args.runs)
    print(section.markdown())
    return 0 if not host.leftovers(prefix) else 1


if __name__ == "__main__":
    raise SystemExit(main())
