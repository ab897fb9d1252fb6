"""The failures a new user meets in the first hour (issue 16, section 8), each as they would see
it: a host port two containers want, or another program holds; a ctrd that cannot have its API
port; containers the administrator stopped or killed, across ctrd restarts; ``ctrctl check`` on
a command the image lacks and a bind source that does not exist; a data directory on overlayfs.
Containers here are named ``first-*``."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.runtime import syscalls
from tests.conftest import REPO
from tests.e2e.conftest import Daemon, Env
from tests.images_fixtures import Entry, Layout, directory, whiteout

SLEEPER = """
[container]
image = "busybox"
command = ["/bin/sleep", "600"]
[restart]
policy = "{policy}"
stop_timeout = "300ms"
"""


AUTOSTART = SLEEPER.format(policy="always").replace("[container]\n",
                                                   "[container]\nautostart = true\n")


def published(port: int, policy: str = "no") -> str:
    return SLEEPER.format(policy=policy) + f'[network]\nports = ["{port}:80"]\n'


@contextlib.contextmanager
def held_port(host: str = "0.0.0.0") -> Iterator[int]:
    """A port another program listens on (this test)."""
    with socket.socket() as other:
        other.bind((host, 0))
        other.listen()
        yield other.getsockname()[1]


def cgroup_dirs(name: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/ctr/{name}") if p.is_dir()]


# -- published ports --------------------------------------------------------------------------

def test_a_host_port_another_container_publishes_fails_the_start_with_that_reason(
        ctrd: Daemon) -> None:
    with held_port() as port:  # taken, then freed: a port nobody else uses right now
        pass
    ctrd.define("first-a", published(port))
    ctrd.define("first-b", published(port, policy="on-failure"))
    ctrd.start()
    ctrd.ctl("start", "first-a")
    result = ctrd.ctl("start", "first-b", check=False)
    reason = f"cannot publish host port {port}/tcp: container first-a publishes it"
    assert result.returncode == 1 and reason in result.stderr
    assert result.stdout == ""  # never a success, not even for a moment
    status = ctrd.status("first-b")
    assert status["state"] in ("backoff", "failed") and reason in status["reason"]
    assert status["pid"] is None and not cgroup_dirs("first-b")  # nothing was started
    assert reason in ctrd.ctl("status", "first-b").stdout
    ctrd.ctl("stop", "first-b")
    ctrd.ctl("stop", "first-a")
    ctrd.ctl("start", "first-b")  # free now
    assert ctrd.status("first-b")["state"] == "running"


def test_a_host_port_another_program_holds_fails_the_start(ctrd: Daemon) -> None:
    with held_port("127.0.0.1") as port:
        ctrd.define("first-taken", published(port))
        ctrd.start()
        result = ctrd.ctl("start", "first-taken", check=False)
        reason = f"cannot publish host port 0.0.0.0:{port}/tcp: the port is in use by another " \
                 "program"
        assert result.returncode == 1 and reason in result.stderr
        status = ctrd.status("first-taken")
        assert status["state"] == "failed" and reason in status["reason"]
    ctrd.ctl("start", "first-taken")  # the program is gone


# -- ctrd's own listener ----------------------------------------------------------------------

def ctrd_alone(env: Env, config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.ctrd", "--config-dir", str(config), "--state-dir",
         str(env.state), "--data-dir", str(env.data), *flags],
        capture_output=True, text=True, timeout=60, cwd=REPO)


def test_ctrd_whose_api_port_is_taken_exits_with_one_line_and_starts_nothing(
        ctrd: Daemon) -> None:
    ctrd.define("first-auto", AUTOSTART)
    with held_port("127.0.0.1") as port:
        result = ctrd_alone(ctrd.env, ctrd.config_dir, "--api-listen", f"127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"ctrd: cannot listen on 127.0.0.1:{port} (api_listen): Address already in use"]
    assert not (ctrd.env.state / "containers" / "first-auto").exists()
    assert not cgroup_dirs("first-auto") and not ctrd.socket.exists()


def test_a_second_ctrd_on_the_same_state_directory_leaves_the_first_alone(ctrd: Daemon) -> None:
    ctrd.define("first-auto", AUTOSTART)
    ctrd.start()
    pid = ctrd.wait_for("first-auto", lambda s: s["state"] == "running")["pid"]
    result = ctrd_alone(ctrd.env, ctrd.config_dir)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"ctrd: another server is listening on {ctrd.socket}"]
    status = ctrd.status("first-auto")  # the first one still answers, and adopted nothing twice
    assert status["pid"] == pid and status["restarts"] == 0


# -- what the administrator ended stays ended -------------------------------------------------

def test_stopped_and_killed_containers_stay_down_across_ctrd_restarts(ctrd: Daemon) -> None:
    for name in ("first-stopped", "first-killed", "first-running"):
        ctrd.define(name, SLEEPER.format(policy="always"))
    ctrd.start()
    for name in ("first-stopped", "first-killed", "first-running"):
        ctrd.ctl("start", name)
    running = ctrd.status("first-running")["pid"]
    ctrd.ctl("stop", "first-stopped")
    ctrd.ctl("kill", "first-killed")  # SIGKILL: a stop asked for, as docker kill
    killed = ctrd.wait_for("first-killed", lambda s: s["state"] == "exited")
    assert killed["exit_code"] == 137 and killed["restarts"] == 0  # not restarted
    for how in (signal.SIGTERM, signal.SIGKILL):
        ctrd.kill(how)
        log_start = ctrd.log.stat().st_size
        ctrd.start()
        assert ctrd.status("first-stopped")["state"] == "stopped"
        after = ctrd.status("first-killed")
        assert (after["state"], after["exit_code"], after["reason"]) == (
            "exited", 137, "exited with 137")
        assert ctrd.status("first-running")["pid"] == running
        log = ctrd.log.read_bytes()[log_start:].decode()
        assert f"first-running: adopted running, PID {running}" in log
        assert "first-running: STOPPED -> STARTING" not in log
        assert "first-killed: exited, as the last ctrd left it (exited with 137)" in log
        assert "-> STARTING" not in log  # nothing was started again
    assert not cgroup_dirs("first-stopped") and not cgroup_dirs("first-killed")


# -- ctrctl check -----------------------------------------------------------------------------

def check(env: Env, config: Path) -> subprocess.CompletedProcess[str]:
    return env.ctrctl("--config-dir", str(config), "check")


def test_check_finds_a_command_the_image_lacks_and_a_missing_bind_source(
        env: Env, tmp_path: Path) -> None:
    config = tmp_path / "check"
    config.mkdir()
    (config / "web.toml").write_text("""
[container]
image = "busybox"
command = ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]
[[mounts]]
source = "/srv/first-no-such-dir"
target = "/www"
""")
    (config / "fine.toml").write_text(
        '[container]\nimage = "busybox"\ncommand = ["httpd", "-f", "-p", "80"]\n')
    result = check(env, config)
    assert result.returncode == 1 and result.stdout == "fine: ok\n"
    assert result.stderr.splitlines() == [
        f"{config / 'web.toml'}: mounts[0].source: /srv/first-no-such-dir does not exist on "
        "this host",
        f"{config / 'web.toml'}: container.command[0]: /bin/httpd is not in the image (it has "
        "/usr/sbin/httpd)"]


def test_check_looks_into_an_image_of_the_store_through_its_path(
        env: Env, tmp_path: Path) -> None:
    """An OCI image whose layers are in the store: its Env's PATH, its Entrypoint, and a file
    a later layer deleted (a whiteout) as the container would see them."""
    layout = Layout(tmp_path / "layout")
    tool = Entry("opt/tools/bin/tool", data=b"#!/bin/sh\n", mode=0o755)
    layout.tag("1", layout.image(
        [[directory("opt"), directory("opt/tools"), directory("opt/tools/bin"), tool,
          directory("usr"), directory("usr/bin"),
          Entry("usr/bin/gone", data=b"#!/bin/sh\n", mode=0o755)],
         [whiteout("usr/bin/gone")]],
        config={"Env": ["PATH=/opt/tools/bin:/usr/bin"], "Entrypoint": ["tool"]}))
    image = env.ctrctl("load", "-i", str(layout.path), check=True).stdout.split()[-1]
    config = tmp_path / "check"
    config.mkdir()
    (config / "tool.toml").write_text(f'[container]\nimage = "{image}"\n')
    (config / "gone.toml").write_text(
        f'[container]\nimage = "{image}"\nentrypoint = ["/usr/bin/gone"]\n')
    (config / "sh.toml").write_text(f'[container]\nimage = "{image}"\nentrypoint = ["sh"]\n')
    result = check(env, config)
    assert result.stdout == "tool: ok\n"
    assert sorted(result.stderr.splitlines()) == [
        f"{config / 'gone.toml'}: container.entrypoint[0]: /usr/bin/gone is not in the image",
        f"{config / 'sh.toml'}: container.entrypoint[0]: sh is in no directory of the image's "
        "PATH (/opt/tools/bin:/usr/bin)"]


# -- a data directory on overlayfs ------------------------------------------------------------

@pytest.fixture
def overlay_data_dir(tmp_path: Path, busybox_image: Path) -> Iterator[Path]:
    """A data directory on an overlay of tmpfs layers, as inside another container; unmounted
    afterwards, whatever happens."""
    backing, merged = tmp_path / "backing", tmp_path / "merged"
    backing.mkdir()
    merged.mkdir()
    syscalls.mount("tmpfs", str(backing), "tmpfs", 0, "size=16m")
    try:
        for part in ("lower", "upper", "work"):
            (backing / part).mkdir()
        syscalls.mount("overlay", str(merged), "overlay", 0,
                       f"lowerdir={backing}/lower,upperdir={backing}/upper,"
                       f"workdir={backing}/work")
        try:
            data = merged / "data"
            (data / "images").mkdir(parents=True)
            (data / "images" / "busybox").symlink_to(busybox_image)
            yield data
        finally:
            syscalls.umount2(str(merged))
    finally:
        syscalls.umount2(str(backing))


def test_a_data_directory_on_overlayfs_gets_one_clear_message(
        env: Env, overlay_data_dir: Path) -> None:
    on_overlay = Env(state=env.state, data=overlay_data_dir)
    result = on_overlay.run("/bin/true", flags=("--name", "first-overlay", "--network", "none"))
    assert result.returncode == 125
    assert result.stderr.splitlines() == [
        f"ctrctl: the data directory {overlay_data_dir} is on overlayfs (as inside another "
        "container), which cannot hold a container's writable layer: give ctr a data directory "
        "on ext4, xfs, btrfs or tmpfs (--data-dir, CTR_DATA_DIR or data_dir in ctrd.toml; a "
        "volume or tmpfs mounted there will do), or run the container read-only (read_only = "
        "true, ctrctl run --read-only)"]
    assert not (env.state / "containers" / "first-overlay").exists()
    read_only = on_overlay.run("/bin/echo", "fine", flags=("--network", "none", "--read-only"))
    assert read_only.returncode == 0 and read_only.stdout == "fine\n"
