"""Escapes from a default container, tried as an attacker inside it would, and shown refused.

Each attack is also shown working where confinement is lifted (``--privileged``), so a probe that
could never succeed proves nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, Env


@pytest.mark.parametrize("flags", [(), ("--userns",)], ids=["default", "userns"])
def test_pid_1_holds_only_stdio(env: Env, probes: Path, flags: tuple[str, ...]) -> None:
    """No descriptor of the host (the state directory was one, under every parent) reaches
    the container: a path through /proc/1/fd/N/.. would lead to the host's /."""
    result = env.run("/probes/fds", flags=("--network", "none", "--mount",
                                           f"{probes}:/probes:ro", *flags))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1", "2"]


def test_pid_1_of_a_ctrd_container_holds_only_stdio(ctrd: Daemon, probes: Path) -> None:
    ctrd.define("fds", _with_probes(probes, '["/probes/fds"]'))
    ctrd.start()
    ctrd.ctl("start", "fds")
    assert _first_line(ctrd, "fds").split() == ["0", "1", "2"]


@pytest.mark.parametrize("fd", range(3, 9))
def test_working_dir_through_a_descriptor_is_refused(env: Env, fd: int) -> None:
    """The runc CVE-2024-21626 pattern: a working directory named through /proc/self/fd of a
    descriptor the runtime holds would lie outside the root; the start fails instead."""
    result = env.run("/bin/pwd", flags=("--network", "none", "--workdir", f"/proc/self/fd/{fd}"))
    assert result.returncode == 125, result.stdout
    assert "working directory" in result.stderr


def test_exec_process_holds_only_stdio(ctrd: Daemon, probes: Path) -> None:
    ctrd.define("box", _with_probes(probes, '["/bin/sleep", "60"]'))
    ctrd.start()
    ctrd.ctl("start", "box")
    assert ctrd.ctl("exec", "box", "--", "/probes/fds").stdout.split() == ["0", "1", "2"]


def _with_probes(probes: Path, command: str, privileged: bool = False) -> str:
    """A definition running ``command`` with tests/probes mounted at /probes."""
    return f"""
[container]
image = "busybox"
command = {command}
privileged = {str(privileged).lower()}
[network]
mode = "none"
[[mounts]]
source = "{probes}"
target = "/probes"
read_only = true
"""


def _first_line(ctrd: Daemon, name: str, timeout: float = 15) -> str:
    """The first line container ``name`` wrote to its log."""
    deadline = time.monotonic() + timeout
    while "\n" not in (text := ctrd.ctl("logs", name).stdout):
        assert time.monotonic() < deadline, f"{name} wrote no line: {text!r}"
        time.sleep(0.05)
    return text.split("\n", 1)[0]


def _watched_execs(ctrd: Daemon, probes: Path, privileged: bool, most: int) -> list[str]:
    """Run /bin/true in a container through ``ctrctl exec`` up to ``most`` times while
    tests/probes/exe_watch runs inside it; what the watcher managed to open."""
    ctrd.define("race", _with_probes(probes, '["/probes/exe_watch", "/tmp/stop"]', privileged))
    ctrd.start()
    ctrd.ctl("start", "race")
    assert _first_line(ctrd, "race") == "watching"
    for _ in range(most):
        ctrd.ctl("exec", "race", "--", "/bin/true")
        if "opened" in ctrd.ctl("logs", "race").stdout:
            break
    # The watcher (PID 1) may end before touch does, and touch then dies with its namespace.
    ctrd.ctl("exec", "race", "--", "/bin/touch", "/tmp/stop", check=False)
    ctrd.wait_for("race", lambda status: status["state"] != "running")
    log = ctrd.ctl("logs", "race").stdout
    assert "watched" in log, log
    return [line for line in log.splitlines() if line.startswith("opened")]


def test_exec_does_not_expose_the_host_binary(ctrd: Daemon, probes: Path) -> None:
    """A process joining the container is not dumpable until it execs the command, so nothing
    inside can open its /proc/PID/exe (CVE-2019-5736)."""
    assert _watched_execs(ctrd, probes, privileged=False, most=40) == []


def test_a_privileged_container_can_open_a_joining_exe(ctrd: Daemon, probes: Path) -> None:
    """The watcher above does win the race where nothing stops it: container root with every
    capability (CAP_SYS_PTRACE overrides "not dumpable") opens the joining process's exe."""
    assert _watched_execs(ctrd, probes, privileged=True, most=200)


@pytest.mark.parametrize(("option", "euid"), [((), "1000"),
                                              (("--security-opt", "no-new-privileges=false"),
                                               "0")])
def test_setuid_raises_privileges_only_without_no_new_privs(
        env: Env, probes: Path, tmp_path: Path, option: tuple[str, ...], euid: str) -> None:
    """no_new_privileges (the default) keeps a setuid binary from regaining what ctr dropped."""
    setuid = tmp_path / "setuid"
    setuid.mkdir()
    shutil.copy(probes / "euid", setuid / "euid")
    os.chown(setuid / "euid", 0, 0)
    os.chmod(setuid / "euid", 0o4755)
    result = env.run("/suid/euid", flags=("--network", "none", "--user", "1000",
                                          "--mount", f"{setuid}:/suid:ro", *option))
    assert result.stdout.split() == ["uid", "1000", "euid", euid], result.stderr
