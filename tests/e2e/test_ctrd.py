"""ctrd end to end: a real daemon, real containers, driven with ctrctl as an administrator would."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, link_exists

SERVER = """
[container]
image = "busybox"
command = ["/bin/sh", "-c",
           "trap 'echo bye; exit 0' TERM; echo started; while :; do sleep 0.1; done"]
[restart]
policy = "on-failure"
delay = "100ms"
"""


def cgroup_dirs(name: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/ctr/{name}") if p.is_dir()]


def test_start_status_stop(ctrd: Daemon) -> None:
    ctrd.define("web", SERVER)
    ctrd.start()
    ctrd.ctl("start", "web")
    status = ctrd.status("web")
    assert status["state"] == "running" and status["pid"] > 0
    assert status["ip"].startswith("10.214.")
    assert set(status) >= {"name", "definition", "state", "pid", "ip", "restarts", "started_at"}
    assert cgroup_dirs("web")
    listing = ctrd.ctl("list").stdout
    assert "web" in listing and "running" in listing
    ctrd.ctl("stop", "web")
    assert ctrd.status("web")["state"] == "stopped"
    assert not cgroup_dirs("web")
    assert "bye" in ctrd.ctl("logs", "web").stdout  # SIGTERM reached the handler in PID 1
    time.sleep(0.5)
    assert ctrd.status("web")["state"] == "stopped"  # a stop asked for is never restarted
    # The bridge stays while ctrd runs (as docker0 does) and goes with ctrd if unused.
    assert link_exists(ctrd.env.bridge)
    ctrd.kill(signal.SIGTERM)
    assert not link_exists(ctrd.env.bridge)


def test_signal_deaf_pid_1_is_killed_after_stop_timeout(ctrd: Daemon) -> None:
    ctrd.define("deaf", """
[container]
image = "busybox"
command = ["/bin/sleep", "60"]
[restart]
stop_timeout = "500ms"
""")
    ctrd.start()
    ctrd.ctl("start", "deaf")
    started = time.monotonic()
    ctrd.ctl("stop", "deaf")
    assert 0.4 < time.monotonic() - started < 5
    assert ctrd.status("deaf")["state"] == "stopped" and not cgroup_dirs("deaf")


DEAF = """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[network]
mode = "none"
[restart]
stop_timeout = "300ms"
"""


def _take_out_of_its_cgroups(name: str, pid: int, remove: bool) -> None:
    """What another program may do: move the container's PID 1 to the root of every hierarchy,
    and remove the container's cgroups."""
    for directory in cgroup_dirs(name):
        (directory.parent.parent / "cgroup.procs").write_text(str(pid))
        if remove:
            directory.rmdir()


@pytest.mark.parametrize("remove", [False, True], ids=["moved", "removed"])
def test_a_container_taken_out_of_its_cgroups_still_stops(ctrd: Daemon, remove: bool) -> None:
    ctrd.define("deaf", DEAF)
    ctrd.start()
    ctrd.ctl("start", "deaf")
    pid = ctrd.status("deaf")["pid"]
    _take_out_of_its_cgroups("deaf", pid, remove)
    ctrd.ctl("stop", "deaf")  # after stop_timeout, SIGKILL reaches PID 1 through its pidfd
    assert ctrd.status("deaf")["state"] == "stopped"
    assert not Path(f"/proc/{pid}").exists()
    assert not cgroup_dirs("deaf")


def test_kill_reaches_a_container_taken_out_of_its_cgroups(ctrd: Daemon) -> None:
    ctrd.define("deaf", DEAF)
    ctrd.start()
    ctrd.ctl("start", "deaf")
    pid = ctrd.status("deaf")["pid"]
    _take_out_of_its_cgroups("deaf", pid, remove=True)
    ctrd.ctl("kill", "deaf")
    assert ctrd.wait_for("deaf", lambda s: s["state"] == "exited")["exit_code"] == 137
    assert not Path(f"/proc/{pid}").exists()


def test_crash_restarts_with_backoff_until_the_burst_limit(ctrd: Daemon) -> None:
    ctrd.define("crash", """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "echo run; exit 3"]
[restart]
policy = "on-failure"
delay = "100ms"
max_delay = "400ms"
burst = 3
interval = "60s"
""")
    ctrd.start()
    ctrd.ctl("start", "crash", check=False)  # it may be gone again before the answer
    status = ctrd.wait_for("crash", lambda s: s["state"] == "failed")
    assert status["restarts"] == 3 and status["exit_code"] == 3
    assert "restart limit" in status["reason"]
    assert ctrd.ctl("logs", "crash").stdout.split() == ["run"] * 4
    # a start by hand gives a fresh budget
    ctrd.ctl("start", "crash", check=False)
    assert ctrd.wait_for("crash", lambda s: s["state"] == "failed")["restarts"] >= 6


def test_policy_no_leaves_an_exited_container(ctrd: Daemon) -> None:
    ctrd.define("once", '[container]\nimage = "busybox"\ncommand = ["/bin/sh", "-c", "exit 4"]\n')
    ctrd.start()
    ctrd.ctl("start", "once", check=False)
    status = ctrd.wait_for("once", lambda s: s["state"] == "exited")
    assert status["exit_code"] == 4 and status["restarts"] == 0


def test_policy_always_restarts_a_clean_exit(ctrd: Daemon) -> None:
    ctrd.define("loop", """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "sleep 0.2; exit 0"]
[restart]
policy = "always"
delay = "100ms"
""")
    ctrd.start()
    ctrd.ctl("start", "loop")
    ctrd.wait_for("loop", lambda s: s["restarts"] >= 2)


def test_oom_kill_counts_as_failure_and_is_recorded(ctrd: Daemon) -> None:
    ctrd.define("hog", """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\\\0' a)"]
[resources]
memory_max = "32M"
[restart]
policy = "on-failure"
burst = 0
""")
    ctrd.start()
    ctrd.ctl("start", "hog", check=False)
    status = ctrd.wait_for("hog", lambda s: s["state"] == "failed")
    assert status["oom_killed"] is True and status["exit_code"] == 137


def test_killed_pid_1_is_restarted(ctrd: Daemon) -> None:
    ctrd.define("web", SERVER)
    ctrd.start()
    ctrd.ctl("start", "web")
    first = ctrd.status("web")["pid"]
    os.kill(first, signal.SIGKILL)
    status = ctrd.wait_for("web", lambda s: s["state"] == "running"
                           and s["pid"] not in (None, first))
    assert status["restarts"] == 1


def test_adoption_after_kill_9_of_ctrd(ctrd: Daemon) -> None:
    for name in ("a", "b", "c"):
        ctrd.define(name, SERVER.replace("echo started", f"echo started {name}"))
    ctrd.start()
    for name in ("a", "b", "c"):
        ctrd.ctl("start", name)
    before = {name: ctrd.status(name)["pid"] for name in ("a", "b", "c")}
    ctrd.kill(signal.SIGKILL)
    ctrd.start()
    after = {name: ctrd.status(name) for name in ("a", "b", "c")}
    assert {name: s["pid"] for name, s in after.items()} == before  # same PIDs, none twice
    assert all(s["state"] == "running" and s["restarts"] == 0 for s in after.values())
    # still supervised: a crash of an adopted container is seen and restarted
    os.kill(before["b"], signal.SIGKILL)
    restarted = ctrd.wait_for("b", lambda s: s["state"] == "running"
                              and s["pid"] not in (None, before["b"]))
    assert restarted["restarts"] == 1 and restarted["exit_code"] == 137
    assert ctrd.ctl("logs", "b").stdout.split().count("started") == 2


def test_exec_runs_inside_the_container(ctrd: Daemon) -> None:
    ctrd.define("web", SERVER + '[network]\naddress = "10.214.0.44/16"\n')
    ctrd.start()
    ctrd.ctl("start", "web")
    out = ctrd.ctl("exec", "web", "--", "/bin/sh", "-c",
                   "hostname; ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4; ps -o pid,args")
    lines = out.stdout.splitlines()
    assert lines[0] == "web" and lines[1] == "10.214.0.44/16"
    assert lines[3].split()[0] == "1"  # the container's PID 1 is the first process it sees
    failing = ctrd.env.ctrctl("exec", "web", "--", "/bin/sh", "-c", "exit 5")
    assert failing.returncode == 5


def test_live_update_reaches_the_cgroup(ctrd: Daemon) -> None:
    ctrd.define("web", SERVER + '[resources]\nmemory_max = "64M"\npids_max = 50\n')
    ctrd.start()
    ctrd.ctl("start", "web")
    ctrd.ctl("update", "web", "--memory-max", "48M", "--pids-max", "20", "--cpu-quota", "25%")
    base = Path("/sys/fs/cgroup")
    assert (base / "memory/ctr/web/memory.limit_in_bytes").read_text().strip() == str(48 << 20)
    assert (base / "pids/ctr/web/pids.max").read_text().strip() == "20"
    assert (base / "cpu/ctr/web/cpu.cfs_quota_us").read_text().strip() == "25000"
    assert ctrd.status("web")["resources"]["memory_max"] == 48 << 20


def _memory_limit(name: str) -> int:
    return int(Path(f"/sys/fs/cgroup/memory/ctr/{name}/memory.limit_in_bytes").read_text())


def test_an_update_lasts_until_the_next_start_and_survives_a_ctrd_restart(ctrd: Daemon) -> None:
    """The precedence rule: a definition's limits apply at each start; a live update to the run
    it was made in, also across a restart of ctrd (which once laid the record's limits over the
    definition for good)."""
    ctrd.define("web", SERVER + '[resources]\nmemory_max = "64M"\n')
    ctrd.start()
    ctrd.ctl("start", "web")
    ctrd.ctl("update", "web", "--memory-max", "48M")
    ctrd.kill()
    ctrd.start()  # adopts web
    assert ctrd.status("web")["resources"] == {"memory_max": 48 << 20}
    assert _memory_limit("web") == 48 << 20
    ctrd.ctl("restart", "web")
    assert ctrd.status("web")["resources"] == {"memory_max": 64 << 20}
    assert _memory_limit("web") == 64 << 20
    ctrd.ctl("stop", "web")
    stopped = ctrd.ctl("update", "web", "--memory-max", "1G", check=False)
    assert stopped.returncode == 1 and "not running" in stopped.stderr


def test_update_persist_writes_a_drop_in_for_every_later_start(ctrd: Daemon) -> None:
    ctrd.define("web", SERVER + '[resources]\nmemory_max = "64M"\n')
    ctrd.start()
    ctrd.ctl("start", "web")
    ctrd.ctl("update", "web", "--memory-max", "96M", "--pids-max", "30", "--persist")
    assert _memory_limit("web") == 96 << 20
    dropin = ctrd.config_dir / "web.toml.d" / "50-update.toml"
    assert "memory_max = 100663296" in dropin.read_text()
    cat = ctrd.env.ctrctl("--config-dir", str(ctrd.config_dir), "cat", "web").stdout
    assert "[resources]" in cat.split(str(dropin))[1]
    ctrd.ctl("restart", "web")
    assert ctrd.status("web")["resources"] == {"memory_max": 96 << 20, "pids_max": 30}
    ctrd.ctl("stop", "web")
    ctrd.ctl("update", "web", "--cpu-quota", "50%", "--persist")  # stopped: the drop-in only
    ctrd.ctl("start", "web")
    assert ctrd.status("web")["resources"] == {"memory_max": 96 << 20, "cpu_quota": 0.5,
                                               "pids_max": 30}


def test_freeze_and_thaw(ctrd: Daemon) -> None:
    ctrd.define("ticker", """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"]
""")
    ctrd.start()
    ctrd.ctl("start", "ticker")

    def counter() -> int:
        return int(ctrd.ctl("exec", "ticker", "--", "/bin/cat", "/tmp/n").stdout)

    ctrd.ctl("freeze", "ticker")
    assert ctrd.status("ticker")["frozen"] is True
    pid = ctrd.status("ticker")["pid"]
    frozen_value = Path(f"/proc/{pid}/root/tmp/n").read_text()
    time.sleep(0.4)
    assert Path(f"/proc/{pid}/root/tmp/n").read_text() == frozen_value
    ctrd.ctl("thaw", "ticker")
    assert ctrd.status("ticker")["frozen"] is False
    first = counter()
    time.sleep(0.4)
    assert counter() > first


def test_joining_namespaces_of_other_containers(ctrd: Daemon) -> None:
    ctrd.define("netowner", SERVER + '[network]\naddress = "10.214.0.50/16"\n')
    ctrd.define("ipcowner", SERVER + '[network]\nmode = "none"\n')
    ctrd.define("bridge", SERVER + """
[network]
mode = "container:netowner"
[namespaces]
ipc = "container:ipcowner"
""")
    ctrd.start()
    ctrd.ctl("start", "netowner")
    ctrd.ctl("start", "ipcowner")
    ctrd.ctl("start", "bridge")
    pids = {name: ctrd.status(name)["pid"] for name in ("netowner", "ipcowner", "bridge")}

    def ns(name: str, kind: str) -> str:
        return os.readlink(f"/proc/{pids[name]}/ns/{kind}")

    assert ns("bridge", "net") == ns("netowner", "net") != ns("ipcowner", "net")
    assert ns("bridge", "ipc") == ns("ipcowner", "ipc") != ns("netowner", "ipc")
    assert ns("bridge", "pid") not in (ns("netowner", "pid"), ns("ipcowner", "pid"))
    addr = ctrd.ctl("exec", "bridge", "--", "/bin/sh", "-c", "ip -4 -o addr show eth0").stdout
    assert "10.214.0.50/16" in addr


def test_join_waits_for_the_other_container(ctrd: Daemon) -> None:
    ctrd.define("owner", SERVER)
    ctrd.define("follower", SERVER + '[network]\nmode = "container:owner"\n')
    ctrd.start()
    follower = ctrd.env.start_background("start", "follower")
    time.sleep(0.3)
    assert ctrd.status("follower")["state"] == "starting"
    ctrd.ctl("start", "owner")
    assert follower.wait(timeout=10) == 0
    assert ctrd.status("follower")["state"] == "running"


def test_autostart_and_a_broken_definition_do_not_stop_ctrd(ctrd: Daemon) -> None:
    ctrd.define("auto", SERVER.replace("[container]", "[container]\nautostart = true"))
    ctrd.define("broken", '[container]\nimage = "busybox"\nmemory = "12Q"\n')
    ctrd.start()
    ctrd.wait_for("auto", lambda s: s["state"] == "running")
    result = ctrd.ctl("start", "broken", check=False)
    assert result.returncode != 0 and "broken.toml" in result.stderr


def test_a_file_with_a_name_too_long_is_its_own_error_and_ctrd_starts(ctrd: Daemon) -> None:
    """Its drop-in directory's name (NAME.toml.d) is too long for the kernel: that once made
    check and reload fail and, after a restart, ctrd die at start-up."""
    ctrd.define("x" * 250, SERVER)
    ctrd.define("web", SERVER)
    ctrd.start()
    ctrd.ctl("start", "web")
    assert ctrd.ctl("reload").returncode == 0
    ctrd.kill()
    ctrd.start()  # a restarted ctrd comes up and adopts web
    assert ctrd.status("web")["state"] == "running"
    check = ctrd.env.ctrctl("--config-dir", str(ctrd.config_dir), "check")
    assert check.returncode != 0
    assert f"{'x' * 250}.toml: invalid container name" in check.stderr
    assert "web: ok" in check.stdout


def test_reload_applies_a_changed_definition_at_the_next_start(ctrd: Daemon) -> None:
    ctrd.define("web", SERVER)
    ctrd.start()
    ctrd.ctl("start", "web")
    ctrd.define("web", SERVER + '[resources]\npids_max = 33\n')
    ctrd.ctl("reload")
    assert "pids_max" not in ctrd.status("web")["resources"]  # the running one is untouched
    ctrd.ctl("restart", "web")
    assert ctrd.status("web")["resources"]["pids_max"] == 33


def test_ctrd_stays_idle_while_a_container_crash_loops(ctrd: Daemon) -> None:
    ctrd.define("crash", """
[container]
image = "busybox"
command = ["/bin/false"]
[restart]
policy = "always"
delay = "2s"
max_delay = "2s"
burst = 100
""")
    ctrd.start()
    assert ctrd.proc is not None
    ctrd.ctl("start", "crash", check=False)
    ctrd.wait_for("crash", lambda s: s["state"] == "backoff")

    def cpu_seconds() -> float:
        assert ctrd.proc is not None
        fields = Path(f"/proc/{ctrd.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    time.sleep(5)  # two or three restarts
    used = cpu_seconds() - before
    assert ctrd.status("crash")["restarts"] >= 2
    assert used < 0.5, f"ctrd used {used:.2f}s of CPU in 5s of a crash loop"


def test_a_joined_container_follows_its_owner(ctrd: Daemon) -> None:
    ctrd.define("owner", SERVER)
    ctrd.define("follower", SERVER + '[network]\nmode = "container:owner"\n')
    ctrd.start()
    ctrd.ctl("start", "owner")
    ctrd.ctl("start", "follower")
    ctrd.ctl("stop", "owner")
    ctrd.wait_for("follower", lambda s: s["state"] == "stopped")
    ctrd.ctl("start", "owner")
    follower = ctrd.wait_for("follower", lambda s: s["state"] == "running" and s["pid"])
    owner_pid = ctrd.status("owner")["pid"]
    # started again inside the owner's new network namespace
    assert os.readlink(f"/proc/{follower['pid']}/ns/net") == \
        os.readlink(f"/proc/{owner_pid}/ns/net")


def test_published_port_reaches_the_container(ctrd: Daemon) -> None:
    ctrd.define("pub", """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "echo published > /www; exec nc -ll -p 80 -e /bin/cat /www"]
[network]
ports = ["18765:80/tcp"]
""")
    ctrd.start()
    ctrd.ctl("start", "pub")
    deadline = time.monotonic() + 5
    while True:
        try:
            with socket.create_connection(("127.0.0.1", 18765), timeout=5) as conn:
                reply = conn.makefile().read()
            if reply:
                break
        except ConnectionError:
            pass
        assert time.monotonic() < deadline, "no answer on the published port"
        time.sleep(0.05)
    assert reply.strip() == "published"
    ctrd.ctl("stop", "pub")
    with pytest.raises(ConnectionRefusedError):  # closed with the container
        socket.create_connection(("127.0.0.1", 18765), timeout=2)


def test_a_start_that_fails_reports_why(ctrd: Daemon) -> None:
    ctrd.define("typo", '[container]\nimage = "busybox"\ncommand = ["/bin/no-such-program"]\n')
    ctrd.start()
    result = ctrd.ctl("start", "typo", check=False)
    assert result.returncode != 0 and "exec /bin/no-such-program" in result.stderr
    status = ctrd.status("typo")
    assert status["state"] == "failed" and "No such file" in status["reason"]


def test_stop_during_backoff_cancels_the_restart(ctrd: Daemon) -> None:
    ctrd.define("crash", """
[container]
image = "busybox"
command = ["/bin/false"]
[restart]
policy = "always"
delay = "1s"
""")
    ctrd.start()
    ctrd.ctl("start", "crash", check=False)
    ctrd.wait_for("crash", lambda s: s["state"] == "backoff")
    ctrd.ctl("stop", "crash")
    time.sleep(1.5)
    status = ctrd.status("crash")
    assert status["state"] == "stopped" and status["restarts"] == 0
