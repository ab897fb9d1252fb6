"""ctrd's warm pool (supervisor/runtime/warm.py): a start prepared ahead gives the same container
as the direct way, a prepared start or zygote that dies is replaced, and nothing of the pool is
left on the host, whether ctrd stops or is killed."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

from supervisor.runtime import warm
from tests.e2e.conftest import Daemon, link_exists

SLEEPER = """
[container]
image = "busybox"
command = ["/bin/sleep", "1000000"]
[resources]
memory_max = "48M"
pids_max = 32
[restart]
stop_signal = "SIGKILL"
"""
NAMES = ("wp-a", "wp-b", "wp-c")
CGROUP = Path("/sys/fs/cgroup")
ZYGOTE_MARK = "supervisor.runtime.warm import serve"  # the zygote's command line, and its forks'


def eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def prepared(ctrd: Daemon) -> set[int]:
    """ctrd's intermediates waiting in its pool: forks of the zygote, each in a session of its
    own (the zygote is not)."""
    assert ctrd.proc is not None
    return {pid for pid in children(ctrd.proc.pid)
            if ZYGOTE_MARK in _cmdline(pid) and os.getsid(pid) == pid}


def ready(ctrd: Daemon) -> int:
    """How many prepared starts wait: intermediates in a cgroup of the pool, the last step of
    their preparing (after the namespace and the spare pair)."""
    return sum(1 for pid in prepared(ctrd)
               if cgroup_of(pid, "memory").startswith("/ctr/.warm-"))


def zygote(ctrd: Daemon) -> int:
    assert ctrd.proc is not None
    (pid,) = [pid for pid in children(ctrd.proc.pid)
              if ZYGOTE_MARK in _cmdline(pid) and os.getsid(pid) != pid]
    return pid


def cgroup_of(pid: int, controller: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "unified" and not controllers):
            return path
    raise LookupError(controller)


def shim_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def inside(ctrd: Daemon, name: str) -> list[str]:
    """What the container sees of itself: cgroups, host name, address, route."""
    return ctrd.ctl("exec", name, "--", "/bin/sh", "-c",
                    "cat /proc/self/cgroup; hostname; ip -4 -o addr show eth0 | tr -s ' ' | "
                    "cut -d' ' -f4 | cut -d/ -f2; ip route | grep ^default | cut -d' ' -f1-3"
                    ).stdout.splitlines()


def sys_view(ctrd: Daemon, name: str) -> tuple[int, list[str]]:
    """The container's /sys: its mount's id, then the network devices it shows (its own
    namespace's), the mount's line in mountinfo from the mount point on, and what a write to it
    gets."""
    mount_id, *lines = ctrd.ctl(
        "exec", name, "--", "/bin/sh", "-c",
        "awk '$5 == \"/sys\" {print $1}' /proc/self/mountinfo; "
        "ls /sys/class/net | tr '\\n' ' '; echo; "
        "awk '$5 == \"/sys\"' /proc/self/mountinfo | cut -d' ' -f5-; "
        "echo 1000 2>&1 > /sys/class/net/lo/mtu | sed 's/.*: //'").stdout.splitlines()
    return int(mount_id), lines


def held_sysfs(ctrd: Daemon) -> set[int]:
    """The mount ids of the sysfs mounts ctrd holds descriptors of: its prepared starts'."""
    assert ctrd.proc is not None
    proc = Path(f"/proc/{ctrd.proc.pid}")
    found = set()
    for fd in (proc / "fd").iterdir():
        with contextlib.suppress(OSError):
            if {"class", "devices", "kernel"} <= set(os.listdir(fd)):
                info = (proc / "fdinfo" / fd.name).read_text()
                found.add(int(re.findall(r"^mnt_id:\s*(\d+)", info, re.MULTILINE)[0]))
    return found


def started(ctrd: Daemon, *names: str) -> None:
    for name in names:
        ctrd.define(name, SLEEPER)
    ctrd.start()


def test_a_prepared_start_gives_the_container_the_direct_way_gives(ctrd: Daemon) -> None:
    started(ctrd, "wp-a", "wp-b")
    ctrd.ctl("start", "wp-a")  # the direct way: from now on the pool keeps starts of its kind
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    waiting, made_ahead = prepared(ctrd), held_sysfs(ctrd)
    ctrd.ctl("start", "wp-b")
    direct, warm = (ctrd.status(name)["pid"] for name in ("wp-a", "wp-b"))
    assert shim_of(warm) in waiting and shim_of(direct) not in waiting
    for name, pid in (("wp-a", direct), ("wp-b", warm)):
        assert cgroup_of(pid, "memory") == cgroup_of(pid, "unified") == f"/ctr/{name}"
        assert (CGROUP / f"memory/ctr/{name}/memory.limit_in_bytes").read_text() == f"{48 << 20}\n"
        assert (CGROUP / f"pids/ctr/{name}/pids.max").read_text() == "32\n"
        assert link_exists(f"ve-{name}")
    seen = {name: inside(ctrd, name) for name in ("wp-a", "wp-b")}
    for name, lines in seen.items():
        assert all(line.endswith(":/") for line in lines[:-3]), lines  # its own cgroup namespace
        assert lines[-3:-1] == [name, "16"]  # its host name, an address of the pool
        assert lines[-1] == "default via 10.214.0.1"
        # the prepared start's sysfs is one made ahead, of its own network namespace, and is
        # the read-only one the direct way mounts
        mount_id, lines = sys_view(ctrd, name)
        assert (mount_id in made_ahead) == (name == "wp-b")
        assert lines == ["eth0 lo ", "/sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro",
                         "Read-only file system"]
    # The shim, PID 1's parent, goes back to ctrd's own cgroups once PID 1 is forked.
    assert ctrd.proc is not None
    daemon, shim = ctrd.proc.pid, shim_of(warm)
    eventually(lambda: all(cgroup_of(shim, kind) == cgroup_of(daemon, kind)
                           for kind in ("memory", "pids", "freezer")),
               "the shim in ctrd's cgroups")
    assert _cmdline(shim_of(warm)).startswith("ctr-shim")


def test_a_prepared_start_after_the_last_container_went(ctrd: Daemon) -> None:
    """The last container's teardown removes the shared cgroup2 parent (ctr/), which the pool's
    starts keep no directory in: a prepared start makes it again."""
    started(ctrd, "wp-a")
    ctrd.ctl("start", "wp-a")
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    ctrd.ctl("stop", "wp-a")
    waiting = prepared(ctrd)
    ctrd.ctl("start", "wp-a")
    pid = ctrd.status("wp-a")["pid"]
    assert shim_of(pid) in waiting and cgroup_of(pid, "unified") == "/ctr/wp-a"


def test_a_limit_the_kernel_refuses_leaves_no_cgroup(ctrd: Daemon) -> None:
    """memory_high needs cgroup v2: the prepared start's renamed cgroup goes with the start."""
    started(ctrd, "wp-a")
    high = SLEEPER.replace("pids_max = 32\n", 'pids_max = 32\nmemory_high = "64M"\n')
    ctrd.define("wp-high", high)
    ctrd.ctl("reload")
    ctrd.ctl("start", "wp-a")
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    waiting = prepared(ctrd)
    refused = ctrd.ctl("start", "wp-high", check=False)
    assert refused.returncode == 1 and "memory_high needs cgroup v2" in refused.stderr
    assert not (CGROUP / "memory/ctr/wp-high").exists()
    assert len(waiting - prepared(ctrd)) == 1  # it was a prepared start's


def test_a_prepared_start_that_died_is_replaced(ctrd: Daemon) -> None:
    started(ctrd, *NAMES)
    ctrd.ctl("start", "wp-a")
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    killed = prepared(ctrd)
    for pid in killed:
        os.kill(pid, signal.SIGKILL)  # ctrd's children: its to reap, so the pids stay theirs
    ctrd.ctl("start", "wp-b")  # finds them dead, starts the direct way
    assert ctrd.status("wp-b")["state"] == "running"
    assert "died; preparing another" in ctrd.log.read_text()
    eventually(lambda: ready(ctrd) == 2, "two new prepared starts")
    assert not prepared(ctrd) & killed
    ctrd.ctl("start", "wp-c")
    assert shim_of(ctrd.status("wp-c")["pid"]) not in killed


def test_a_zygote_that_died_is_replaced(ctrd: Daemon) -> None:
    started(ctrd, *NAMES)
    ctrd.ctl("start", "wp-a")
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    first = zygote(ctrd)
    os.kill(first, signal.SIGKILL)
    ctrd.ctl("start", "wp-b")  # takes a prepared start; the pool needs its zygote for another
    eventually(lambda: ready(ctrd) == 2, "the pool refilled")
    assert zygote(ctrd) != first
    assert "the zygote" in ctrd.log.read_text()
    ctrd.ctl("start", "wp-c")
    assert ctrd.status("wp-c")["state"] == "running"


def _pool_cgroups() -> set[str]:
    return {path.name for path in CGROUP.glob("*/ctr/.warm-*")}


def test_a_killed_ctrds_pool_is_removed_by_the_next(ctrd: Daemon) -> None:
    started(ctrd, "wp-a")
    ctrd.ctl("start", "wp-a")
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    waiting = prepared(ctrd)
    ours = set((ctrd.env.state / "warm").read_text().split()) & _pool_cgroups()
    assert len(ours) == 2
    ctrd.kill()  # its prepared starts die with it (parent-death signal); their cgroups stay
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in waiting),
               "the prepared starts gone with ctrd")
    assert ours <= _pool_cgroups()
    ctrd.start()  # adopts wp-a, and removes what the last pool left
    assert not ours & _pool_cgroups()
    assert ctrd.status("wp-a")["state"] == "running"


def test_a_stopped_ctrd_leaves_no_pool(ctrd: Daemon) -> None:
    started(ctrd, "wp-a")
    ctrd.ctl("start", "wp-a")
    eventually(lambda: ready(ctrd) == 2, "two prepared starts")
    prefix = warm.link_prefix(ctrd.env.state)

    def spares() -> list[str]:
        return [path.name for path in Path("/sys/class/net").iterdir()
                if path.name.startswith(prefix)]

    eventually(lambda: len(spares()) == 2, "two spare pairs")  # each made by its intermediate
    ours, made = set((ctrd.env.state / "warm").read_text().split()), spares()
    assert len(ours) == 2 and ours <= _pool_cgroups()
    ctrd.ctl("stop", "wp-a")
    ctrd.kill(signal.SIGTERM)
    assert not ours & _pool_cgroups()
    assert not (ctrd.env.state / "warm").exists()
    assert not [name for name in made if link_exists(name)]
