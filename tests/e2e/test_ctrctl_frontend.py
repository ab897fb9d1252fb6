"""ctrctl's compiled front end (shim/ctrctl.c) against the Python command it stands before: a
plain ``ctrctl run`` through ctrd done without Python, and every other command line handed to
Python once, with the arguments as given, before anything is started, so that it ends as Python
ends it. The runs through ctrd of tests/e2e/test_run_daemon.py go through the front end too."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import Daemon, Env
from tests.e2e.test_run_daemon import NO_NET, background, listed
from tests.frontends import Recorded, build

PYTHON_CTRCTL = Path(sys.executable).parent / "ctrctl"


def options_table(directory: Path) -> Path:
    """``directory`` with the front end's table made from this tree's parser, as make shim
    makes it."""
    directory.mkdir()
    with (directory / "ctrctl-options.h").open("w") as out:
        subprocess.run([sys.executable, str(REPO / "packaging" / "ctrctl-options")],
                       stdout=out, check=True)
    return directory


@pytest.fixture
def recorded(tmp_path: Path) -> Recorded:
    directory = options_table(tmp_path / "front")
    return Recorded(directory, "ctrctl.c", PYTHON_CTRCTL, includes=[directory])


@pytest.fixture
def front(ctrd: Daemon, recorded: Recorded) -> Env:
    ctrd.start()
    return replace(ctrd.env, binary=recorded.binary)


def test_a_plain_run_through_ctrd_needs_no_python(front: Env, recorded: Recorded,
                                                  ctrd: Daemon, tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "note").write_text("from the host\n")
    script = ("echo $A $B; cat /m/note; grep -c ' /scratch ' /proc/mounts; id -u; pwd; "
              "hostname; echo err >&2; exit 7")
    result = subprocess.run(
        front.command("run", "--rm", "--name=hf-plain", "-e", "A=1", "--env=B=2", "-v",
                      "shared:/m:ro", "--tmpfs", "/scratch:1M", "--pids-max", "32", "--user",
                      "1000", "--workdir=/tmp", "--hostname", "hf-host", *NO_NET, "--",
                      "/bin/sh", "-c", script),
        capture_output=True, text=True, cwd=tmp_path, env=front.environ, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (
        7, "1 2\nfrom the host\n1\n1000\n/tmp\nhf-host\n", "err\n")
    assert recorded.calls() == []
    assert listed(ctrd) == {}  # removed with the run


def test_the_socket_comes_from_the_flag_or_the_environment(front: Env, recorded: Recorded,
                                                           ctrd: Daemon) -> None:
    binary = str(front.binary)
    by_flag = subprocess.run([binary, "--socket", str(ctrd.socket), "run", "--rm", *NO_NET,
                              "--", "/bin/echo", "flag"], capture_output=True, text=True,
                             env=front.environ, timeout=60)
    by_environment = subprocess.run([binary, "run", "--rm", *NO_NET, "--", "/bin/echo", "env"],
                                    capture_output=True, text=True, timeout=60,
                                    env={**front.environ, "CTR_SOCKET": str(ctrd.socket)})
    assert (by_flag.stdout, by_environment.stdout) == ("flag\n", "env\n")
    assert recorded.calls() == []


@pytest.mark.parametrize("flag", ["-i", "--interactive"])
def test_stdin_goes_to_the_container_with_i(front: Env, recorded: Recorded, flag: str) -> None:
    result = subprocess.run(front.command("run", "--rm", flag, *NO_NET, "--", "/bin/sh", "-c",
                                          "read line; echo got $line"),
                            input="hello\n", capture_output=True, text=True, env=front.environ,
                            timeout=60)
    assert (result.returncode, result.stdout) == (0, "got hello\n"), result.stderr
    assert recorded.calls() == []


def test_a_signal_deaf_command_is_killed_after_the_default_stop_timeout(
        front: Env, recorded: Recorded, ctrd: Daemon) -> None:
    proc = background(front, "--rm", *NO_NET, "--", "/bin/sh", "-c",
                      "echo ready; while :; do sleep 0.1; done")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGKILL
    assert time.monotonic() - sent >= 10  # model.runoptions.DEFAULT_STOP_TIMEOUT
    assert recorded.calls() == []
    assert listed(ctrd) == {}


# (arguments after the globals, stdin, what Python ends with: exit status and stderr's last line
# or stdout)
HANDED_OVER = {
    "a bad value, refused by ctrd": (
        ["run", "--rm", "--pids-max", "0", "--", "/bin/true"], None,
        (2, "ctrctl run: error: argument --pids-max: must be between 1 and 2147483647, got 0")),
    "an unknown flag": (
        ["run", "--bogus", "--", "/bin/true"], None,
        (2, "ctrctl run: error: unrecognized arguments: --bogus")),
    "an abbreviated flag": (
        ["run", "--rm", "--pids-m", "0", *NO_NET, "--", "/bin/true"], None,
        (2, "ctrctl run: error: argument --pids-max: must be between 1 and 2147483647, got 0")),
    "two sources": (
        ["run", "--image", "busybox", "--rootfs", "/", "--", "/bin/true"], None,
        (2, "ctrctl run: error: argument --rootfs: not allowed with argument --image")),
    "a flag given a value": (
        ["run", "--rm=yes", "--", "/bin/true"], None,
        (2, "ctrctl run: error: argument --rm: ignored explicit argument 'yes'")),
    "a terminal, with stdin, in one flag": (
        ["run", "--rm", "-it", *NO_NET, "--", "/bin/echo", "hi"], None, (0, "hi\n")),
    "--local": (["run", "--local", "--rm", *NO_NET, "--", "/bin/echo", "here"], None,
                (0, "here\n")),
    "a stop timeout": (
        ["run", "--rm", "--stop-timeout", "1s", *NO_NET, "--", "/bin/echo", "t"], None,
        (0, "t\n")),
    "another verb": (["list", "-o", "json"], None, (0, "[]\n")),
}


@pytest.mark.parametrize("case", HANDED_OVER, ids=list(HANDED_OVER))
def test_what_is_not_the_plain_case_is_pythons(front: Env, recorded: Recorded, ctrd: Daemon,
                                               case: str) -> None:
    args, stdin, (code, said) = HANDED_OVER[case]
    result = subprocess.run(front.command(*args), input=stdin, capture_output=True, text=True,
                            env=front.environ, cwd=REPO, timeout=60)
    out = result.stdout if said.endswith("\n") else result.stderr.splitlines()[-1]
    assert (result.returncode, out) == (code, said), result.stderr
    assert recorded.calls() == [" ".join(front.command(*args)[1:])]  # once, as given
    assert listed(ctrd) == {}


def test_without_ctrd_python_answers(env: Env, recorded: Recorded) -> None:
    front = replace(env, binary=recorded.binary)
    refused = front.ctrctl("run", "--daemon", "--rm", *NO_NET, "--", "/bin/true")
    assert refused.returncode == 125
    assert refused.stderr.startswith(f"ctrctl: cannot reach ctrd at {env.state / 'ctrd.sock'}")
    alone = front.ctrctl("run", "--rm", *NO_NET, "--", "/bin/echo", "alone")
    assert (alone.returncode, alone.stdout) == (0, "alone\n")
    assert len(recorded.calls()) == 2


def test_a_front_end_built_to_hand_over_to_itself_says_so(tmp_path: Path) -> None:
    directory = options_table(tmp_path / "front")
    binary = build("ctrctl.c", directory / "ctrctl", directory / "ctrctl", [directory])
    result = subprocess.run([str(binary), "list"], capture_output=True, text=True, timeout=10)
    assert (result.returncode, result.stderr) == (
        1, f"ctrctl: {binary} is this front end, not the Python command\n")
