"""What a benchmark left on the host, found by its run's name prefix, and its forced removal.

Every part cleans up through ctrd or ctrctl first; this is the net under them when a part fails
half-way (a ctrd that hangs, a kill -9): processes by PID, cgroups, veths and the bridge by the
names this run gave them, never anything of another user of the host.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
NET = Path("/sys/class/net")


def memory_kib(pid: int) -> dict[str, int]:
    """``Rss`` and ``Pss`` (and their parts) of one process from smaps_rollup, in KiB."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0])
    return values


def children(pid: int, comm: str | None = None) -> list[int]:
    """Direct children of ``pid`` (with that command name, if given)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        if int(rest.split()[1]) == pid and (comm is None or name == comm):
            found.append(int(entry.name))
    return found


def cgroups(prefix: str) -> list[Path]:
    """The containers' cgroups of this run in every hierarchy (ctr's cgroupfs parent is ``ctr``)."""
    return sorted(CGROUP_ROOT.glob(f"*/ctr/{prefix}*"))


def interfaces(prefix: str) -> list[str]:
    """This run's host veth ends (``ve-PREFIX...``) and bridges (``PREFIX...``)."""
    return sorted(path.name for pattern in (f"ve-{prefix}*", f"{prefix}*")
                  for path in NET.glob(pattern))


def leftovers(prefix: str, pids: Iterable[int] = ()) -> list[str]:
    """Everything of this run still on the host, as readable lines; empty when clean."""
    found = [f"cgroup {path}" for path in cgroups(prefix)]
    found += [f"interface {name}" for name in interfaces(prefix)]
    found += [f"process {pid}" for pid in pids if _alive(pid)]
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (an adopted container's shim, gone and not yet reaped by
    PID 1) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def force_clean(prefix: str, pids: Iterable[int] = ()) -> None:
    """SIGKILL the given processes and whatever runs in this run's cgroups, then remove the
    cgroups, veths and bridge. Only for after a failure: ctrd's own teardown is the normal way."""
    kill_all(pids)
    for path in cgroups(prefix):
        with contextlib.suppress(OSError):
            kill_all(int(pid) for pid in (path / "cgroup.procs").read_text().split())
    deadline = time.monotonic() + 5
    while (left := cgroups(prefix)) and time.monotonic() < deadline:
        for path in left:
            with contextlib.suppress(OSError):
                path.rmdir()
        time.sleep(0.05)
    names = interfaces(prefix)
    if names:
        from pyroute2 import IPRoute  # only on this rare path

        with IPRoute() as ip:
            for name in names:
                with contextlib.suppress(Exception):
                    ip.link("del", ifname=name)



def sweep(prefix: str, workdir: Path, note: Callable[[str], None]) -> None:
    """After a part: remove its work dir and whatever of the run is left, saying what was."""
    shutil.rmtree(workdir, ignore_errors=True)
    left = leftovers(prefix)
    if left:
        force_clean(prefix)
        note(f"Clean-up after failure removed: {', '.join(left)}")
