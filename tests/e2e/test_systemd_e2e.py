"""ctr under a real systemd: the host's systemd booted as PID 1 by tests/systemd_harness.py,
the project installed inside with `make install`, then the commands an administrator runs.

No D-Bus is mocked here: ctrd makes each container's scope through that systemd's manager.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import REPO
from tests.systemd_harness import BootedSystemd, booted_systemd

WEB = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo hello-out; echo hello-err >&2; \
while true; do sleep 1 & wait $!; done"]
[network]
mode = "none"
[resources]
memory_max = "64M"
[restart]
policy = "on-failure"
delay = "100ms"
stop_timeout = "2s"
"""

# One line every 0.1 s, numbered: a gap in the journal is a lost line.
COUNTER = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "i=0; while true; do echo count-$i; i=$((i+1)); sleep 0.1; done"]
[network]
mode = "none"
"""

# More lines at once than journald lets one service log by default (about 10000 in 30 s).
FLOOD = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; seq 1 50000; \
while true; do sleep 1 & wait $!; done"]
[network]
mode = "none"
"""

# Says its last words and ends when told (SIGUSR1).
LAST_WORDS = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "trap 'echo last words; exit 3' USR1; \
while true; do sleep 1 & wait $!; done"]
[network]
mode = "none"
[restart]
policy = "no"
"""

# Runs once, briefly, and exits with CODE (the restart policy does not restart it).
ONCE = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "sleep 0.5; exit $CODE"]
environment = {{ CODE = "{code}" }}
[network]
mode = "none"
[restart]
policy = "no"
"""

# The probe of tests/test_devices.py: make a node of the kernel log in the root (/tmp is
# nodev), try to read it.
PRIVILEGED = """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
privileged = true
[network]
mode = "none"
"""
DEVICE_PROBE = ["/bin/sh", "-c", "mknod /k c 1 11 && head -c 1 /k >/dev/null && "
                "echo opened"]

# Numbered lines, 30000 of them over about 3 s, into files of 64K (rotated some 25 times).
LOG_FLOOD = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "i=1; while [ $i -le 30000 ]; do echo line-$i; \
[ $((i % 1000)) -eq 0 ] && sleep 0.1; i=$((i+1)); done; echo done; exec sleep 600"]
[network]
mode = "none"
[logs]
max_size = "64K"
max_files = 40
[restart]
stop_timeout = "100ms"
"""

BAD = """
[container]
image = "busybox"
command = ["/bin/false"]
[network]
mode = "none"
[restart]
policy = "on-failure"
delay = "50ms"
max_delay = "100ms"
burst = 2
interval = "60s"
"""


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def machine() -> Iterator[BootedSystemd]:
    with booted_systemd() as booted:
        booted.run(["make", "-C", str(REPO), "-s", "install"],
                   environment={"CTR_VENV": str(REPO / ".venv")})
        booted.run(["mkdir", "-p", "/etc/ctr"])
        booted.path("/etc/ctr/web.toml").write_text(WEB)
        booted.path("/etc/ctr/bad.toml").write_text(BAD)
        booted.path("/etc/ctr/priv.toml").write_text(PRIVILEGED)
        booted.path("/etc/ctr/counter.toml").write_text(COUNTER)
        booted.path("/etc/ctr/flood.toml").write_text(FLOOD)
        booted.path("/etc/ctr/lastwords.toml").write_text(LAST_WORDS)
        booted.path("/etc/ctr/done.toml").write_text(ONCE.format(code=0))
        booted.path("/etc/ctr/broken.toml").write_text(ONCE.format(code=3))
        booted.path("/etc/ctr/log-flood.toml").write_text(LOG_FLOOD)
        booted.run(["systemctl", "start", "ctrd"])
        yield booted


def active(machine: BootedSystemd, unit: str) -> str:
    return machine.run(["systemctl", "is-active", unit], check=False).stdout.strip()


def container_pid(machine: BootedSystemd, name: str) -> int:
    show = machine.run(["ctrctl", "status", name, "-o", "json"]).stdout
    return int(json.loads(show)["pid"])


def journal(machine: BootedSystemd, *match: str) -> list[dict[str, Any]]:
    out = machine.run(["journalctl", *match, "-o", "json", "--no-pager"]).stdout
    return [json.loads(line) for line in out.splitlines()]


def show(machine: BootedSystemd, unit: str, prop: str) -> str:
    return machine.run(["systemctl", "show", unit, "-p", prop, "--value"]).stdout.strip()


def test_install_put_units_in_place(machine: BootedSystemd) -> None:
    for unit in ("ctrd.service", "ctr@.service", "ctr.slice"):
        assert machine.path(f"/usr/local/lib/systemd/system/{unit}").is_file()
    assert active(machine, "ctrd.service") == "active"
    show = machine.run(["systemctl", "show", "ctrd", "-p", "Type", "-p", "KillMode",
                        "-p", "WatchdogUSec"]).stdout
    assert "Type=notify" in show and "KillMode=process" in show and "WatchdogUSec=30s" in show
    features = machine.run(["/usr/local/bin/ctr-runtime", "features"]).stdout
    assert '"ociVersionMax"' in features  # the OCI runtime is installed beside ctrd and ctrctl


def test_the_installed_ctrctl_runs_a_container_through_ctrd(machine: BootedSystemd) -> None:
    """/usr/local/bin/ctrctl is the compiled front end: a plain run goes to the ctrd of the
    unit, which runs it in its own scope, and is gone after."""
    assert not machine.path("/usr/local/bin/ctrctl").is_symlink()
    ran = machine.run(["/bin/sh", "-c", "/usr/local/bin/ctrctl run --rm --name installed "
                       "--network none -- /bin/sh -c 'sleep 2; exit 4' & sleep 1; "
                       "systemctl is-active ctr-installed.scope; wait $!; echo $?"])
    assert ran.stdout == "active\n4\n", ran.stderr
    assert "installed" not in machine.run(["ctrctl", "list"]).stdout


def test_start_runs_the_container_in_a_delegated_scope_with_its_limits(
        machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    assert active(machine, "ctr@web.service") == "active"
    status = machine.run(["systemctl", "status", "ctr@web", "--no-pager"], check=False).stdout
    assert "ctr container web" in status and "active (running)" in status
    scope = machine.run(["systemctl", "show", "ctr-web.scope", "-p", "Delegate", "-p",
                         "MemoryMax", "-p", "Slice", "-p", "ActiveState"]).stdout
    assert "Delegate=yes" in scope and "MemoryMax=67108864" in scope
    assert "Slice=ctr.slice" in scope and "ActiveState=active" in scope
    pid = container_pid(machine, "web")
    cgroup = machine.path(f"/proc/{pid}/cgroup").read_text()
    assert "/ctr.slice/ctr-web.scope" in cgroup
    limit = machine.run(["cat", "/sys/fs/cgroup/memory/ctr.slice/ctr-web.scope/"
                         "memory.limit_in_bytes"], check=False).stdout.strip()
    unified = machine.run(["cat", "/sys/fs/cgroup/ctr.slice/ctr-web.scope/memory.max"],
                          check=False).stdout.strip()
    assert str(64 << 20) in (limit, unified)


def test_the_scope_allows_only_the_standard_devices(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    assert show(machine, "ctr-web.scope", "DevicePolicy") == "closed"
    allowed = show(machine, "ctr-web.scope", "DeviceAllow")
    assert "/dev/char/1:3 rwm" in allowed and "char-pts rwm" in allowed, allowed
    refused = machine.run(["ctrctl", "exec", "web", "--", *DEVICE_PROBE], check=False)
    assert "opened" not in refused.stdout and "Operation not permitted" in refused.stderr
    machine.run(["ctrctl", "start", "priv"])
    try:
        assert show(machine, "ctr-priv.scope", "DevicePolicy") == "auto"
        opened = machine.run(["ctrctl", "exec", "priv", "--", *DEVICE_PROBE], check=False)
        assert "opened" in opened.stdout, opened.stderr
    finally:
        machine.run(["ctrctl", "stop", "priv"])


def test_live_update_changes_the_scope_property(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    machine.run(["ctrctl", "update", "web", "--memory-max", "96M"])
    show = machine.run(["systemctl", "show", "ctr-web.scope", "-p", "MemoryMax"]).stdout
    assert f"MemoryMax={96 << 20}" in show


def test_killed_pid1_is_restarted_and_the_unit_stays_active(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    before = container_pid(machine, "web")
    machine.run(["kill", "-KILL", str(before)])

    def restarted() -> bool:
        try:
            return container_pid(machine, "web") != before
        except (ValueError, TypeError):
            return False

    wait_for(restarted, "web to run again")
    assert active(machine, "ctr@web.service") == "active"


def test_kill9_of_ctrd_then_restart_adopts_the_same_container(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    pid = container_pid(machine, "web")
    machine.run(["systemctl", "kill", "--signal=KILL", "--kill-whom=main", "ctrd"])
    machine.run(["systemctl", "restart", "ctrd"])
    assert container_pid(machine, "web") == pid
    assert active(machine, "ctr@web.service") == "active"
    assert active(machine, "ctr-web.scope") == "active"


def test_always_failing_definition_leaves_the_unit_failed(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@bad"], check=False)
    wait_for(lambda: active(machine, "ctr@bad.service") == "failed", "ctr@bad to fail")
    status = machine.run(["systemctl", "status", "ctr@bad", "--no-pager", "-n", "50"],
                         check=False).stdout
    assert "container bad failed: exited with 1; restart limit reached" in status
    machine.run(["systemctl", "reset-failed", "ctr@bad"])


@pytest.mark.parametrize(("name", "end"), [("done", "inactive"), ("broken", "failed")])
def test_a_container_that_ends_for_good_ends_its_unit(machine: BootedSystemd, name: str,
                                                      end: str) -> None:
    """Exit 0 with restart policy "no": the unit goes inactive; exit 3: it fails."""
    machine.run(["systemctl", "start", f"ctr@{name}"])
    wait_for(lambda: active(machine, f"ctr@{name}") == end, f"ctr@{name} to be {end}")
    machine.run(["systemctl", "reset-failed", f"ctr@{name}"], check=False)


def test_ctrctl_stop_ends_the_unit_cleanly(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    machine.run(["ctrctl", "stop", "web"])
    wait_for(lambda: active(machine, "ctr@web") == "inactive", "ctr@web to end")


def test_the_units_main_process_is_small(machine: BootedSystemd) -> None:
    """It only keeps the unit active, once per container: sleep(1), not a Python client."""
    machine.run(["systemctl", "start", "ctr@web"])
    pid = show(machine, "ctr@web", "MainPID")
    assert machine.path(f"/proc/{pid}/cmdline").read_bytes() == b"/bin/sleep\0infinity\0"
    rollup = machine.path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    pss_kib = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    assert pss_kib < 512


def test_stop_ends_the_container_and_its_scope(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    machine.run(["systemctl", "stop", "ctr@web"])
    assert active(machine, "ctr@web.service") == "inactive"
    assert active(machine, "ctr-web.scope") == "inactive"
    view = machine.run(["ctrctl", "status", "web", "-o", "json"]).stdout
    assert '"stopped"' in view


def test_enable_links_the_instance_into_multi_user(machine: BootedSystemd) -> None:
    machine.run(["systemctl", "enable", "ctr@web"])
    link = machine.path("/etc/systemd/system/multi-user.target.wants/ctr@web.service")
    assert link.is_symlink()
    assert machine.run(["systemctl", "is-enabled", "ctr@web"]).stdout.strip() == "enabled"
    machine.run(["systemctl", "disable", "ctr@web"])


def test_the_journal_has_stdout_and_stderr_under_the_unit_and_the_container_name(
        machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@web"])
    wanted = {("hello-out", "6"), ("hello-err", "3")}  # info, err

    def logged(*match: str) -> set[tuple[str, str]]:
        return {(e["MESSAGE"], e["PRIORITY"]) for e in journal(machine, *match)}

    wait_for(lambda: wanted <= logged("-u", "ctr@web"), "web's lines under ctr@web")
    assert wanted <= logged("CONTAINER_NAME=web")
    status = machine.run(["systemctl", "status", "ctr@web", "--no-pager", "-n", "200"],
                         check=False).stdout
    assert "hello-out" in status and "hello-err" in status
    logs = machine.run(["ctrctl", "logs", "web"]).stdout  # the log file has them too
    assert "hello-out" in logs and "hello-err" in logs


def test_no_line_is_lost_while_ctrd_restarts_or_crashes(machine: BootedSystemd) -> None:
    def counted() -> list[dict[str, Any]]:
        return journal(machine, "CONTAINER_NAME=counter")

    def restarted_after(pid: str) -> bool:
        return show(machine, "ctrd", "MainPID") not in ("0", pid) and \
            active(machine, "ctrd") == "active"

    machine.run(["systemctl", "start", "ctr@counter"])
    wait_for(lambda: len(counted()) >= 5, "counter's first lines")
    stored = int(show(machine, "ctrd", "NFileDescriptorStore"))
    assert stored >= 2  # both ends of counter's socket to the journal, web's if it runs
    machine.run(["systemctl", "restart", "ctrd"])
    crashed = show(machine, "ctrd", "MainPID")
    wait_for(lambda: len(counted()) >= 15, "counter's lines after the restart")
    machine.run(["systemctl", "kill", "--signal=KILL", "--kill-whom=main", "ctrd"])
    wait_for(lambda: restarted_after(crashed), "Restart= to bring ctrd back")  # 1 s later
    seen = len(counted())
    wait_for(lambda: len(counted()) >= seen + 10, "counter's lines after the crash")

    entries = counted()
    numbers = [int(e["MESSAGE"].removeprefix("count-")) for e in entries]
    assert numbers == list(range(len(numbers)))  # no gap, no line twice
    relays = list(dict.fromkeys(e["_PID"] for e in entries))
    assert len(relays) == 3  # the first ctrd, the restarted one, the one after the crash
    # What was written while no ctrd ran waited in the pipe: the new ctrd relays it at once.
    after_crash = [int(e["__REALTIME_TIMESTAMP"]) for e in entries if e["_PID"] == relays[2]]
    assert after_crash[4] - after_crash[0] < 250_000  # 5 lines in < 0.25 s, not 0.5 s
    logged = machine.run(["ctrctl", "logs", "counter"]).stdout.split()
    assert logged[:len(numbers)] == [f"count-{n}" for n in numbers]

    machine.run(["systemctl", "stop", "ctr@counter"])
    assert int(show(machine, "ctrd", "NFileDescriptorStore")) == stored - 2


def test_running_containers_are_registered_with_machined(machine: BootedSystemd) -> None:
    def registered() -> dict[str, str]:
        out = machine.run(["machinectl", "show", "web", "-p", "Leader", "-p", "Class", "-p",
                           "Service", "-p", "Unit"], check=False).stdout
        return dict(line.split("=", 1) for line in out.splitlines())

    machine.run(["systemctl", "start", "ctr@web"])
    pid = container_pid(machine, "web")
    wait_for(lambda: registered().get("Leader") == str(pid), "web in machinectl")
    assert registered() == {"Leader": str(pid), "Class": "container", "Service": "ctr",
                            "Unit": "ctr-web.scope"}
    listed = machine.run(["machinectl", "list", "--no-legend"]).stdout
    assert any(line.split()[:3] == ["web", "container", "ctr"] for line in listed.splitlines())

    machine.run(["kill", "-KILL", str(pid)])  # restarted: registered again, with its new PID 1
    wait_for(lambda: registered().get("Leader") not in (None, str(pid)), "web registered again")
    assert registered()["Leader"] == str(container_pid(machine, "web"))

    machine.run(["systemctl", "stop", "ctr@web"])
    wait_for(lambda: not registered(), "web gone from machinectl")


def test_a_definition_dropped_in_while_ctrd_runs_starts(machine: BootedSystemd) -> None:
    machine.path("/etc/ctr/late.toml").write_text(COUNTER)
    try:
        machine.run(["systemctl", "start", "ctr@late"])
        assert active(machine, "ctr@late") == "active"
        assert machine.run(["ctrctl", "status", "late"]).stdout.split()[:4] == [
            "Name:", "late", "Definition:", "late"]
        machine.run(["systemctl", "stop", "ctr@late"])
    finally:
        machine.path("/etc/ctr/late.toml").unlink()


def test_a_flood_of_output_reaches_the_journal_whole(machine: BootedSystemd) -> None:
    def last() -> str:
        return machine.run(["journalctl", "CONTAINER_NAME=flood", "-n", "1", "-o", "cat",
                            "--no-pager"]).stdout.strip()

    machine.run(["systemctl", "start", "ctr@flood"])
    wait_for(lambda: last() == "50000", "the 50000th line")
    lines = machine.run(["journalctl", "CONTAINER_NAME=flood", "-o", "cat", "--no-pager"]).stdout
    assert lines.split() == [str(n) for n in range(1, 50001)]
    machine.run(["systemctl", "stop", "ctr@flood"])


def test_what_a_container_said_before_it_ended_while_ctrd_was_down_is_kept(
        machine: BootedSystemd) -> None:
    machine.run(["systemctl", "start", "ctr@lastwords"])
    pid = container_pid(machine, "lastwords")
    ctrd = show(machine, "ctrd", "MainPID")
    machine.run(["systemctl", "kill", "--signal=KILL", "--kill-whom=main", "ctrd"])
    machine.run(["kill", "-USR1", str(pid)])  # Restart= brings ctrd back 1 s later
    wait_for(lambda: show(machine, "ctrd", "MainPID") not in ("0", ctrd), "ctrd back")
    wait_for(lambda: active(machine, "ctr@lastwords") == "failed", "ctr@lastwords to fail")
    said = machine.run(["journalctl", "-u", "ctr@lastwords", "-o", "cat", "--no-pager"]).stdout
    assert "last words" in said.splitlines()
    assert "container lastwords failed: exited with 3" in said
    machine.run(["systemctl", "reset-failed", "ctr@lastwords"])


def test_logs_rotate_and_reach_the_journal_whole_across_a_crash_of_ctrd(
        machine: BootedSystemd) -> None:
    """The shim writes and rotates the file whether ctrd runs or not; the journal's socket waits
    in the fd store while Restart= brings ctrd back."""
    def numbers(text: str) -> list[int]:
        return [int(n.removeprefix("line-")) for n in text.split() if n.startswith("line-")]

    def journal_text() -> str:
        return machine.run(["journalctl", "CONTAINER_NAME=log-flood", "-o", "cat",
                            "--no-pager"]).stdout

    machine.run(["systemctl", "start", "ctr@log-flood"])
    wait_for(lambda: "line-3000" in journal_text(), "the first lines in the journal")
    ctrd = show(machine, "ctrd", "MainPID")
    machine.run(["systemctl", "kill", "--signal=KILL", "--kill-whom=main", "ctrd"])
    wait_for(lambda: show(machine, "ctrd", "MainPID") not in ("0", ctrd), "ctrd back")
    wait_for(lambda: "done" in journal_text(), "the flood's end in the journal")
    sent = numbers(journal_text())
    assert list(dict.fromkeys(sent)) == list(range(1, 30001))  # in order, none lost
    assert len(sent) <= 30001  # at most the line ctrd was sending when killed, sent again
    assert numbers(machine.run(["ctrctl", "logs", "log-flood"]).stdout) == list(range(1, 30001))
    logs = sorted(p.name for p in machine.path("/var/lib/ctr/logs").glob("log-flood.log*"))
    assert 10 < len(logs) <= 40 and "log-flood.log.1" in logs
    stamped = machine.run(["ctrctl", "logs", "-t", "-n", "1", "log-flood"]).stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:]{8}\.\d{9}Z done\n", stamped)
    machine.run(["systemctl", "stop", "ctr@log-flood"])
