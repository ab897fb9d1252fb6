"""Exec into a running container: the new process sees and is seen as one of the container's."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from supervisor.model import defaults
from supervisor.model.spec import ContainerSpec, NetworkSpec, Resources, SecuritySpec
from supervisor.runtime import process, security, tty
from supervisor.runtime.cgroups import open_driver
from supervisor.runtime.container import Container, Options
from supervisor.runtime.exec import NotRunningError, cgroup_directories, spawn_in
from supervisor.runtime.paths import Dirs
from tests.e2e.conftest import Env

HOSTNAME = "exec-box"
CONFINED = security.confinement(SecuritySpec(), privileged=False)  # a default container's
PID1_SCRIPT = "echo from-pid1 > /tmp/mark; echo ready; exec sleep 60"


@pytest.fixture
def box(env: Env) -> Iterator[Container]:
    """A running busybox container on a veth network of the test's own, stopped afterwards."""
    spec = ContainerSpec(name="exec-box", image="busybox", command=("/bin/sh", "-c", PID1_SCRIPT),
                         hostname=HOSTNAME, network=NetworkSpec(mode="veth"),
                         resources=Resources(pids_max=64))
    with contextlib.ExitStack() as stack:
        out_r, out_w = os.pipe()
        out = stack.enter_context(os.fdopen(out_r))
        null = os.open(os.devnull, os.O_RDONLY)
        stack.callback(os.close, null)
        container = Container(spec, Dirs(env.state, env.data), open_driver("auto"),
                              Options(remove=True, stdio=(null, out_w, 2), pool=env.pool,
                                      bridge=env.bridge))
        try:
            container.start()  # a failed start removes what it made itself
        finally:
            os.close(out_w)  # PID 1 has its own copy
        stack.callback(container.wait)
        stack.callback(container.teardown)  # first: kills PID 1 and anything exec'd
        assert out.readline().strip() == "ready"
        yield container


def _run(container: Container, argv: Sequence[str], **kwargs: Any) -> tuple[int, str]:
    """Exec ``argv`` in the container; its exit code and combined output."""
    assert container.pid is not None
    return _run_in(container.pid, argv, **kwargs)


def _run_in(target: int, argv: Sequence[str], privileged: bool = False,
            **kwargs: Any) -> tuple[int, str]:
    out_r, out_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = spawn_in(target, argv, confinement=security.PRIVILEGED if privileged else CONFINED,
                       stdio=(null, out_w, out_w), **kwargs)
    finally:
        os.close(out_w)
        os.close(null)
    with os.fdopen(out_r) as out:
        output = out.read()
    _, status = os.waitpid(pid, 0)
    return process.exit_code(status), output


def _ok(container: Container, argv: Sequence[str], **kwargs: Any) -> str:
    code, output = _run(container, argv, **kwargs)
    assert code == 0, output
    return output.strip()


def test_hostname_is_the_containers(box: Container) -> None:
    assert _ok(box, ["hostname"]) == HOSTNAME


def test_ps_shows_the_containers_processes_and_itself(box: Container) -> None:
    lines = _ok(box, ["ps", "-o", "pid,args"]).splitlines()[1:]
    processes = {int(pid): args for pid, args in (line.split(None, 1) for line in lines)}
    assert processes[1] == "sleep 60"
    assert "ps -o pid,args" in processes.values()
    assert len(processes) == 2  # nothing of the host


def test_cgroup_view_is_pid1s(box: Container) -> None:
    mine = _ok(box, ["cat", "/proc/self/cgroup"])
    assert mine == _ok(box, ["cat", "/proc/1/cgroup"])
    assert "0::/" in mine.splitlines()  # rooted at the container's cgroup, as PID 1 sees it


def test_exec_process_is_in_the_containers_cgroup(box: Container) -> None:
    assert box.pid is not None and box.cgroup is not None
    pid = spawn_in(box.pid, ["sleep", "60"], confinement=CONFINED)
    try:
        assert pid in box.cgroup.pids()
        assert set(box.cgroup.pids()) == {box.pid, pid}
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_filesystem_is_the_containers(box: Container) -> None:
    assert _ok(box, ["cat", "/tmp/mark"]) == "from-pid1"
    assert _ok(box, ["sh", "-c", "echo from-exec > /tmp/back"]) == ""
    assert _ok(box, ["cat", "/tmp/back"]) == "from-exec"


def test_root_is_the_targets_own_even_if_it_chrooted(box: Container) -> None:
    """The target's root, not its mount namespace's (nsenter --root, as runc exec does)."""
    assert box.pid is not None
    _ok(box, ["sh", "-c", "mkdir -p /tmp/jail/bin && cp /bin/busybox /tmp/jail/bin/ && "
              "touch /tmp/jail/inside"])
    jailed = spawn_in(box.pid, ["chroot", "/tmp/jail", "/bin/busybox", "sleep", "60"],
                      confinement=CONFINED)
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{jailed}/cmdline").read_bytes() != b"/bin/busybox\0sleep\x0060\0":
            assert time.monotonic() < deadline, "the jailed process did not start"
            time.sleep(0.01)
        # uid 0 by number: the jail has no /etc/passwd to look "root" up in; privileged: nor
        # the /proc/sys/kernel/cap_last_cap that dropping capabilities reads
        code, output = _run_in(jailed, ["/bin/busybox", "ls", "/"], user="0", privileged=True)
        assert (code, output.split()) == (0, ["bin", "inside"])
    finally:
        os.kill(jailed, 9)
        os.waitpid(jailed, 0)


def test_network_is_the_containers(box: Container) -> None:
    assert box.address is not None
    addresses = _ok(box, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
    assert f"inet {box.address}/" in addresses


def test_user_environment_and_working_dir(box: Container) -> None:
    output = _ok(box, ["sh", "-c", 'id -u; id -g; echo "$HOME"; echo "$GREETING"; pwd; '
                       'grep CapEff /proc/self/status'],
                 user="ctr", environment={"GREETING": "hello"}, working_dir="/home/ctr")
    uid, gid, home, greeting, cwd, caps = output.splitlines()
    assert (uid, gid, home, greeting, cwd) == ("1000", "1000", "/home/ctr", "hello", "/home/ctr")
    assert int(caps.split()[1], 16) == 0
    root = _ok(box, ["sh", "-c", 'id -u; echo "$HOME"; echo "$PATH"; pwd'])
    assert root.splitlines() == ["0", "/root", defaults.PATH, "/"]


def test_exit_status_propagates(box: Container) -> None:
    assert _run(box, ["sh", "-c", "exit 3"])[0] == 3
    assert _run(box, ["sh", "-c", "kill -TERM $$"])[0] == 128 + 15


def _capabilities(status: str) -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1], 16)
            for line in status.splitlines() if line.startswith("Cap")}


def test_capabilities_dropped_unless_privileged(box: Container) -> None:
    caps = _capabilities(_ok(box, ["cat", "/proc/self/status"]))
    assert caps["CapEff"] == caps["CapBnd"] == security.DEFAULT_CAPABILITY_MASK
    assert "NoNewPrivs:\t1" in _ok(box, ["cat", "/proc/self/status"])
    privileged = _capabilities(_ok(box, ["cat", "/proc/self/status"], privileged=True))
    with open("/proc/self/status") as f:
        ours = _capabilities(f.read())
    assert privileged["CapEff"] == ours["CapEff"]
    assert privileged["CapEff"] & ~security.DEFAULT_CAPABILITY_MASK  # e.g. CAP_SYS_ADMIN


def test_tty_is_the_controlling_terminal_of_a_new_session(box: Container) -> None:
    assert box.pid is not None
    master, slave_path = tty.open_pty()
    try:
        slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
        try:
            pid = spawn_in(box.pid, ["sh", "-c", 'cat /proc/$$/stat; echo "TERM=$TERM"; '
                                     "test -t 0 && echo tty"], confinement=CONFINED,
                           stdio=(slave,) * 3, tty=True)
        finally:
            os.close(slave)  # the process has its own
        try:
            output = _read_terminal(master)
        finally:
            _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    assert process.exit_code(status) == 0, output
    stat_line, term, is_tty = output.replace("\r", "").strip().splitlines()
    fields = stat_line.rpartition(")")[2].split()
    own_pid, session, tty_nr = stat_line.split()[0], fields[3], int(fields[4])
    assert session == own_pid and tty_nr != 0
    assert term.startswith("TERM=") and term != "TERM="
    assert is_tty == "tty"


def _read_terminal(master: int) -> str:
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and select.select([master], [], [], 1)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the last slave end closed
            break
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_missing_command_is_a_clear_error(box: Container) -> None:
    with pytest.raises(process.SpawnError, match="exec no-such-command: No such file"):
        _run(box, ["no-such-command"])


def test_unknown_user_is_a_clear_error(box: Container) -> None:
    with pytest.raises(process.SpawnError, match="user 'nosuchuser' not found"):
        _run(box, ["true"], user="nosuchuser")


def test_missing_working_dir_is_a_clear_error(box: Container) -> None:
    with pytest.raises(process.SpawnError, match="working directory /nowhere"):
        _run(box, ["true"], working_dir="/nowhere")


def test_frozen_container_is_refused(box: Container) -> None:
    assert box.pid is not None and box.cgroup is not None
    box.cgroup.freeze()
    try:
        with pytest.raises(process.SpawnError, match="frozen"):
            spawn_in(box.pid, ["true"], confinement=CONFINED)
    finally:
        box.cgroup.thaw()
    assert _ok(box, ["echo", "thawed"]) == "thawed"


def test_dead_or_zombie_pid_is_a_clear_error() -> None:
    child = subprocess.Popen(["true"])
    try:
        while not Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].startswith(" Z"):
            time.sleep(0.01)
        with pytest.raises(NotRunningError, match=f"no running process {child.pid}"):
            spawn_in(child.pid, ["true"], confinement=CONFINED)
    finally:
        child.wait()
    with pytest.raises(NotRunningError):
        spawn_in(child.pid, ["true"], confinement=CONFINED)


def test_the_callers_later_children_stay_in_its_pid_namespace(box: Container) -> None:
    _ok(box, ["true"])
    ours = os.readlink("/proc/self/ns/pid")
    assert os.readlink("/proc/thread-self/ns/pid_for_children") == ours
    child = subprocess.run(["readlink", "/proc/self/ns/pid"], capture_output=True, text=True,
                           check=True)
    assert child.stdout.strip() == ours


def test_works_from_a_worker_thread(box: Container) -> None:
    """ctrd calls it from an executor thread: only that thread's pid namespace is switched."""
    assert box.pid is not None
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(_ok(box, ["hostname"])))
    worker.start()
    worker.join()
    assert results == [HOSTNAME]
    assert os.readlink("/proc/thread-self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")


HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_cgroup_directories_on_a_hybrid_host() -> None:
    membership = ("9:name=systemd:/ctr.slice/ctr-web.scope\n4:memory:/ctr/web\n"
                  "2:cpu,cpuacct:/ctr/web\n1:net_cls,net_prio:/\n0::/ctr/web\n")
    assert cgroup_directories(membership, HYBRID_MOUNTINFO) == [
        "/sys/fs/cgroup/systemd/ctr.slice/ctr-web.scope",
        "/sys/fs/cgroup/memory/ctr/web",
        "/sys/fs/cgroup/cpu,cpuacct/ctr/web",
        "/sys/fs/cgroup/unified/ctr/web",
    ]  # net_cls is not mounted, and the process is in its root: nothing to join


def test_cgroup_directories_on_a_v2_host_with_a_systemd_scope() -> None:
    mountinfo = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
    assert cgroup_directories("0::/ctr.slice/ctr-web.scope\n", mountinfo) == [
        "/sys/fs/cgroup/ctr.slice/ctr-web.scope"]


def test_cgroup_directories_under_a_mount_of_a_subtree() -> None:
    """A mount of part of the hierarchy (as inside a container), with an escaped space."""
    mountinfo = ("50 23 0:26 /outer / rw - ext4 /dev/sda1 rw\n"
                 "51 50 0:40 /ctr /my\\040cgroups rw - cgroup2 cgroup2 rw\n")
    assert cgroup_directories("0::/ctr/web\n", mountinfo) == ["/my cgroups/web"]
    with pytest.raises(process.SpawnError, match="not mounted here"):
        cgroup_directories("0::/elsewhere\n", mountinfo)
    with pytest.raises(process.SpawnError, match="memory:/ctr/web"):
        cgroup_directories("4:memory:/ctr/web\n", mountinfo)
