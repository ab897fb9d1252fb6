"""``ctrctl run``'s options, read by the one translation both ways use (``model.runoptions``),
and the stdio ctrd takes from the client (``daemon.runs``)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.cli.main import parse_args
from supervisor.cli.runargs import CLIENT_ONLY, options
from supervisor.daemon import runs
from supervisor.model import runoptions
from supervisor.model.errors import Invalid
from supervisor.model.spec import MountSpec, PortMapping

POOL = "10.88.0.0/16"


def test_every_flag_of_ctrctl_run_is_an_option_or_ctrctls_own() -> None:
    args = parse_args(["run", "--memory-max", "64M", "--", "/bin/true"])  # the limits too
    flags = {action.dest for action in args.parser._actions} - CLIENT_ONLY
    assert flags == set(runoptions.KEYS) - {"cwd"}  # cwd: where ctrctl runs, not a flag


def test_the_flags_as_typed_make_the_spec(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = parse_args(["run", "--name", "web", "--rootfs", "/srv/root", "--network", "veth",
                       "--address", "10.88.0.9/16", "-p", "8080:80", "--memory-max", "64M",
                       "--cpu-quota", "50%", "-e", "A=1", "-v", "data:/data:ro",
                       "--tmpfs", "/scratch:1M", "--cap-drop", "NET_RAW", "--security-opt",
                       "no-new-privileges=false", "--stop-timeout", "2s", "--init", "--rm",
                       "--", "/bin/sh", "-c", "echo hi"])
    run = runoptions.read(options(args), POOL)
    spec = run.spec
    assert (spec.name, spec.image, spec.command) == ("web", "/srv/root",
                                                      ("/bin/sh", "-c", "echo hi"))
    assert spec.network.address == "10.88.0.9/16"
    assert spec.network.ports == (PortMapping(8080, 80, "tcp"),)
    assert (spec.resources.memory_max, spec.resources.cpu_quota) == (64 << 20, 0.5)
    assert spec.environment == (("A", "1"),)
    assert spec.mounts == (MountSpec(target="/data", source=str(tmp_path / "data"),
                                     read_only=True),
                           MountSpec(target="/scratch", type="tmpfs", size=1 << 20))
    assert spec.security.capabilities_drop == ("CAP_NET_RAW",)
    assert spec.security.no_new_privileges is False
    assert (spec.stop.timeout, spec.init, run.remove, run.terminal) == (2.0, True, True, False)


def test_the_limit_flags_are_declared_only_for_a_command_line_that_may_name_one() -> None:
    """Their table loads the model's spec: a plain run through ctrd does without."""
    plain = parse_args(["run", "--rm", "-t", "--network", "none", "--", "/bin/ls", "--all"])
    assert not hasattr(plain, "memory_max")
    assert parse_args(["run", "--pids-max=64", "/bin/true"]).pids_max == "64"
    assert "--memory-max SIZE" in plain.parser.format_help()


def test_defaults_are_a_definitions_and_ctrctl_names_the_run() -> None:
    run = runoptions.read({"name": "r"}, POOL)
    assert run.spec.command is None  # the image's Cmd, or a shell
    assert run.spec.image == "busybox" and run.spec.network.mode == "veth"
    assert (run.spec.stop.timeout, run.remove, run.terminal) == (10.0, False, False)
    assert re.fullmatch(r"run-[0-9a-f]{8}", str(options(parse_args(["run"]))["name"]))


@pytest.mark.parametrize(("given", "key", "reason"), [
    ({"memory_max": "0"}, "memory_max", "must be more than 0 bytes"),
    ({"env": ["A=1", "NOEQUALS"]}, "env", "not NAME=VALUE: 'NOEQUALS'"),
    ({"env": "A=1"}, "env", "expected an array of strings"),
    ({"rm": "yes"}, "rm", "expected true or false"),
    ({"address": "10.99.0.2/16"}, "address", "10.99.0.2 is outside the address pool"),
    ({"publish": ["8080:80"], "network": "none"}, "publish", "--publish needs --network veth"),
    ({"image": "busybox", "rootfs": "/srv/root"}, "rootfs", "give --image or --rootfs"),
    ({"shell": True}, "shell", "unknown option"),
    ({"name": None}, "name", "required"),
])
def test_a_bad_option_is_refused_naming_its_key(given: dict[str, object], key: str,
                                                 reason: str) -> None:
    with pytest.raises(Invalid, match=re.escape(reason)) as caught:
        runoptions.read({"name": "r", **given}, POOL)
    assert caught.value.at[0] == key


def test_ctrd_names_the_key_of_a_bad_option() -> None:
    with pytest.raises(runs.OptionError) as caught:
        runs.read({"name": "r", "cpu_weight": "0"}, POOL)
    assert caught.value.detail == {"key": "cpu_weight"}
    assert str(caught.value) == "cpu_weight: must be between 1 and 10000, got 0"


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_the_three_streams_sent_are_taken(pipe: tuple[int, int]) -> None:
    fds = [os.dup(pipe[0]), os.dup(pipe[1]), os.dup(pipe[1])]
    attached = runs.Attached.take(fds, terminal=False)
    assert attached.fds == tuple(fds) and attached.console is None
    attached.close()
    assert not any(_open(fd) for fd in fds)


@pytest.mark.parametrize(("kind", "terminal", "reason"), [
    ("two", False, "2 descriptor(s) sent with the request: give stdin, stdout and stderr"),
    ("directory", False, "the stdin sent is a directory"),
    ("pipe", True, "the stdin sent is not a terminal"),
])
def test_stdio_ctrd_cannot_give_a_container_is_refused_and_closed(
        pipe: tuple[int, int], tmp_path: Path, kind: str, terminal: bool, reason: str) -> None:
    first = os.open(tmp_path, os.O_RDONLY) if kind == "directory" else os.dup(pipe[0])
    fds = [first, os.dup(pipe[1])] + ([] if kind == "two" else [os.dup(pipe[1])])
    with pytest.raises(runs.OptionError, match=re.escape(reason)):
        runs.Attached.take(fds, terminal)
    assert not any(_open(fd) for fd in fds)


def test_a_terminal_is_taken_with_its_path() -> None:
    master, slave = os.openpty()
    try:
        fds = [os.dup(slave) for _ in range(3)]
        attached = runs.Attached.take(fds, terminal=True)
        assert attached.console == os.ttyname(slave)
        attached.close()
    finally:
        os.close(master)
        os.close(slave)
