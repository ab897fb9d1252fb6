"""``ctrctl run`` handed to a running ctrd, beside ``--local`` (ctrctl starts it itself): the
same output, exit status, signals, terminal and files either way, and a ctrd restart that the
run outlives. Handed to ctrd by the Python command and by the installed one, its compiled front
end (shim/ctrctl.c), which runs a plain run itself and hands the rest to Python
(tests/e2e/test_ctrctl_frontend.py). Names begin with ``hr-`` (handed run)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import termios
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Daemon, Env

NO_NET = ("--network", "none")
FRONT_END = REPO / "supervisor" / "runtime" / "libexec" / "ctrctl"  # make shim's
WAYS = ("--local", "--daemon", "front-end")
SIGNAL_DEAF = "echo ready; while :; do sleep 0.1; done"  # sh as PID 1: no handler, no default


def handed(env: Env, way: str) -> tuple[Env, str]:
    """The ctrctl of ``way`` and its flag: the Python command with ``--local`` or ``--daemon``,
    or the front end with ``--daemon``."""
    if way == "front-end":
        return replace(env, binary=FRONT_END), "--daemon"
    return env, way


def background(env: Env, *args: str) -> subprocess.Popen[str]:
    """``ctrctl run ARGS`` on pipes; returns once the container printed its first line."""
    proc = subprocess.Popen(env.command("run", *args), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=env.environ)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    assert first == "ready", f"container did not come up: {first!r} {proc.stderr}"
    return proc


def listed(ctrd: Daemon) -> dict[str, str]:
    """Name -> state of every container ctrd knows."""
    views = json.loads(ctrd.ctl("list", "-o", "json").stdout)
    return {view["name"]: view["state"] for view in views}


@pytest.mark.parametrize("way", WAYS)
def test_output_and_exit_status_are_the_commands(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    env, flag = handed(ctrd.env, way)
    result = env.ctrctl("run", flag, "--rm", *NO_NET, "--", "/bin/sh", "-c",
                        "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert listed(ctrd) == {}  # gone with the run, through ctrd too


@pytest.mark.parametrize("way", WAYS)
def test_a_command_killed_by_a_signal_is_128_plus_it(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    env, flag = handed(ctrd.env, way)
    result = env.ctrctl("run", flag, "--rm", "--init", *NO_NET, "--", "/bin/sh", "-c",
                        "kill -KILL $$")
    assert result.returncode == 128 + signal.SIGKILL, result


@pytest.mark.parametrize("way", WAYS[1:])
def test_the_run_is_ctrds_while_it_runs(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    proc = background(*handed(ctrd.env, way), "--rm", "--name", "hr-listed", *NO_NET, "--",
                      "/bin/sh", "-c", "echo ready; cat; echo eof; trap 'exit 0' TERM; "
                      "while :; do sleep 0.1; done")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("not for the container\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "eof\n"  # no -i: stdin is /dev/null, as alone
    assert listed(ctrd) == {"hr-listed": "running"}
    assert ctrd.status("hr-listed")["pid"] is not None
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert listed(ctrd) == {}


@pytest.mark.parametrize("way", WAYS)
def test_stdin_with_i(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    env, flag = handed(ctrd.env, way)
    result = subprocess.run(env.command("run", flag, "--rm", "-i", *NO_NET, "--",
                                        "/bin/sh", "-c", "read line; echo got $line"),
                            input="hello\n", capture_output=True, text=True, cwd=REPO,
                            env=env.environ, timeout=60)
    assert (result.returncode, result.stdout) == (0, "got hello\n"), result


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 42), (signal.SIGINT, 43),
                                           (signal.SIGHUP, 44)])
def test_signals_to_ctrctl_reach_the_command(ctrd: Daemon, way: str, sig: int,
                                             code: int) -> None:
    ctrd.start()
    script = ("trap 'exit 42' TERM; trap 'exit 43' INT; trap 'exit 44' HUP; echo ready; "
              "while :; do sleep 0.1; done")
    proc = background(*handed(ctrd.env, way), "--rm", *NO_NET, "--", "/bin/sh", "-c", script)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == code


@pytest.mark.parametrize("way", WAYS)
def test_a_signal_deaf_command_is_killed_after_the_stop_timeout(ctrd: Daemon,
                                                                way: str) -> None:
    ctrd.start()
    proc = background(*handed(ctrd.env, way), "--rm", "--stop-timeout", "1s", *NO_NET, "--",
                      "/bin/sh", "-c", SIGNAL_DEAF)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGKILL


@pytest.mark.parametrize("way", WAYS)
def test_rm_decides_whether_the_writable_layer_stays(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    env, flag = handed(ctrd.env, way)
    layer = env.data / "containers" / f"hr-layer{way}"
    for rm, kept in ((("--rm",), False), ((), True)):
        result = env.ctrctl("run", flag, *rm, "--name", layer.name, *NO_NET, "--", "/bin/sh",
                            "-c", "echo kept > /root/file")
        assert result.returncode == 0, result
        assert (layer / "rootfs" / "upper" / "root" / "file").exists() is kept
    again = env.ctrctl("run", flag, "--rm", "--name", layer.name, *NO_NET, "--", "/bin/cat",
                       "/root/file")
    assert again.stdout == "kept\n"  # the next run of that name finds it
    assert not layer.exists()


def test_every_flag_means_the_same_either_way(ctrd: Daemon, tmp_path: Path) -> None:
    ctrd.start()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "note").write_text("from the host\n")
    script = ("id -u; id -g; pwd; echo $A; hostname; cat /m/note; grep -c scratch "
              "/proc/mounts; grep CapBnd /proc/self/status; "
              "ip -4 -o addr show eth0 | cut -d' ' -f7 | cut -d. -f1,2; echo ready; "
              "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    seen = []
    for way in WAYS:
        name = f"hr-flags{way}"
        env, flag = handed(ctrd.env, way)
        proc = subprocess.Popen(
            env.command("run", flag, "--rm", "--name", name, "--user", "1000:1000",
                             "--workdir", "/tmp", "-e", "A=1", "--hostname", "hr-flags", "-v",
                             "shared:/m:ro", "--tmpfs", "/scratch:1M", "--memory-max", "64M",
                             "--pids-max", "32", "--cap-add", "NET_ADMIN", "--", "/bin/sh",
                             "-c", script),
            stdout=subprocess.PIPE, text=True, cwd=tmp_path, env=ctrd.env.environ)
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(10)]
        cgroup = Path("/sys/fs/cgroup")  # the cgroupfs driver's, as on this host
        limits = [(cgroup / "memory" / "ctr" / name / "memory.limit_in_bytes").read_text(),
                  (cgroup / "pids" / "ctr" / name / "pids.max").read_text()]
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        seen.append((lines, limits))
    assert seen[0] == seen[1] == seen[2] == (
        ["1000", "1000", "/tmp", "1", "hr-flags", "from the host", "1",
         "CapBnd:\t00000000a80435fb",  # docker's default set and NET_ADMIN
         "10.214", "ready"],  # veth on the pool of the test, ctrd's network and ctrctl's alike
        [f"{64 << 20}\n", "32\n"])


@pytest.mark.parametrize("way", WAYS)
def test_a_bad_flag_is_a_usage_error_either_way(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    env, flag = handed(ctrd.env, way)
    result = env.ctrctl("run", flag, "--pids-max", "0", "--", "/bin/true")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "ctrctl run: error: argument --pids-max: must be between 1 and 2147483647, got 0")


def test_daemon_fails_without_ctrd_and_the_default_starts_it_here(env: Env) -> None:
    result = env.ctrctl("run", "--daemon", "--rm", *NO_NET, "--", "/bin/true")
    assert result.returncode == 125
    assert result.stderr.startswith(f"ctrctl: cannot reach ctrd at {env.state / 'ctrd.sock'}")
    assert env.ctrctl("run", "--rm", *NO_NET, "--", "/bin/true").returncode == 0


@pytest.mark.parametrize("way", WAYS[1:])
def test_the_run_outlives_a_ctrd_restart(ctrd: Daemon, tmp_path: Path, way: str) -> None:
    """ctrd killed while the container runs: its output still reaches ctrctl meanwhile, the
    next ctrd adopts it, and ctrctl gets the exit status from that one."""
    ctrd.start()
    script = ("echo ready; until [ -e /x/go ]; do if [ -e /x/ping ]; then rm /x/ping; "
              "echo pong; fi; sleep 0.05; done; echo done; exit 5")
    proc = background(*handed(ctrd.env, way), "--rm", "--name", "hr-restart", *NO_NET, "-v",
                      f"{tmp_path}:/x", "--", "/bin/sh", "-c", script)
    assert proc.stdout is not None and proc.stderr is not None
    ctrd.kill(signal.SIGKILL)
    (tmp_path / "ping").touch()
    assert proc.stdout.readline() == "pong\n"  # written while no ctrd runs
    ctrd.start()
    (tmp_path / "go").touch()
    assert proc.wait(timeout=60) == 5, proc.stderr.read()
    assert proc.stdout.read() == "done\n"
    assert "lost ctrd" in proc.stderr.read()
    assert listed(ctrd) == {}


# -- a terminal ----------------------------------------------------------------------------------

def _set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


@contextlib.contextmanager
def on_terminal(env: Env, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``ctrctl run ARGS`` on a terminal of the test's own (33x91), as a user's shell runs it:
    the session leader, the terminal its controlling one; yields it and the terminal's master."""
    master, slave = os.openpty()
    _set_size(slave, 33, 91)
    proc = subprocess.Popen(env.command("run", *args), stdin=slave, stdout=slave, stderr=slave,
                            cwd=REPO, env={**env.environ, "TERM": "vt220"},
                            start_new_session=True,
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        yield proc, master
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(master)


def read_until(master: int, text: bytes, seen: bytearray) -> None:
    while text not in seen:
        assert select.select([master], [], [], 30)[0], f"no {text!r} in {bytes(seen)!r}"
        try:
            seen += os.read(master, 4096)
        except OSError:  # EIO: the terminal is closed
            raise AssertionError(f"no {text!r} in {bytes(seen)!r}") from None


@pytest.mark.parametrize("way", WAYS)
def test_t_gives_a_terminal_of_the_callers_size_that_follows_it(ctrd: Daemon,
                                                                way: str) -> None:
    ctrd.start()
    script = ("trap 'stty size; exit 7' WINCH; [ -t 0 ] && echo tty; echo $TERM; stty size; "
              "echo ready; while :; do sleep 0.1; done")
    with on_terminal(*handed(ctrd.env, way), "--rm", "-t", *NO_NET, "--", "/bin/sh", "-c",
                     script) as (proc, master):
        seen = bytearray()
        read_until(master, b"ready", seen)
        assert b"tty\r\nvt220\r\n33 91\r\n" in seen
        _set_size(master, 40, 100)  # as a terminal window resized
        read_until(master, b"40 100", seen)
        assert proc.wait(timeout=30) == 7


@pytest.mark.parametrize("way", WAYS)
def test_ctrl_c_on_the_terminal_interrupts_the_command(ctrd: Daemon, way: str) -> None:
    ctrd.start()
    with on_terminal(*handed(ctrd.env, way), "--rm", "-t", *NO_NET, "--", "/bin/sh", "-c",
                     "trap 'echo interrupted; exit 5' INT; echo ready; "
                     "while :; do sleep 0.1; done") as (proc, master):
        seen = bytearray()
        read_until(master, b"ready", seen)  # the trap is set
        os.write(master, b"\x03")
        read_until(master, b"interrupted", seen)
        assert proc.wait(timeout=30) == 5
