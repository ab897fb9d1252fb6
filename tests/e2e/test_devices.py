"""The device allow-list: a container may make any node but open only the standard ones and the
devices it was given, enforced by the kernel (v1 devices controller, v2 eBPF program).

The host device in these tests is a loop device of the test's own over a file with a known
secret, so a probe that reads it shows exactly what a container could take from a host disk.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.model.spec import DeviceRule
from supervisor.runtime import loop
from supervisor.runtime.cgroups.v2 import devices as v2_devices
from tests.e2e.conftest import Daemon, Env

SECRET = b"host-disk-secret"
UNIFIED = Path("/sys/fs/cgroup/unified")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[loop.LoopDevice]:
    image = tmp_path / "disk.img"
    image.write_bytes(SECRET.ljust(1 << 16, b"\0"))
    with loop.attach(image, read_only=False) as device:
        yield device


def _numbers(device: loop.LoopDevice) -> tuple[int, int]:
    rdev = os.stat(device.path).st_rdev
    return os.major(rdev), os.minor(rdev)


def _read_through_mknod(device: loop.LoopDevice) -> str:
    major, minor = _numbers(device)
    return f"mknod /d b {major} {minor} && echo made && head -c {len(SECRET)} /d"


def test_a_default_container_can_make_but_not_open_a_host_disk(env: Env,
                                                              disk: loop.LoopDevice) -> None:
    result = env.run("/bin/sh", "-c", _read_through_mknod(disk), flags=("--network", "none"))
    assert "made" in result.stdout  # CAP_MKNOD is kept, as docker keeps it
    assert SECRET.decode() not in result.stdout
    assert "Operation not permitted" in result.stderr


def test_a_privileged_container_can_read_a_host_disk(env: Env, disk: loop.LoopDevice) -> None:
    result = env.run("/bin/sh", "-c", _read_through_mknod(disk),
                     flags=("--network", "none", "--privileged"))
    assert SECRET.decode() in result.stdout, result.stderr


def test_the_kernel_log_cannot_be_opened_by_default(env: Env) -> None:
    probe = "mknod /k c 1 11 && head -c 1 /k >/dev/null && echo opened"
    refused = env.run("/bin/sh", "-c", probe, flags=("--network", "none"))
    assert "opened" not in refused.stdout and "Operation not permitted" in refused.stderr
    allowed = env.run("/bin/sh", "-c", probe, flags=("--network", "none", "--privileged"))
    assert "opened" in allowed.stdout, allowed.stderr


def test_the_standard_devices_and_a_terminal_still_work(env: Env) -> None:
    script = ("head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; echo x > /dev/null;"
              " echo x > /dev/full 2>/dev/null || echo full-refused-write; tty")
    result = env.run("/bin/sh", "-c", script, flags=("--network", "none", "-t"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["4", "4", "full-refused-write"]
    assert "/dev/pts/" in result.stdout or "/dev/console" in result.stdout


def test_device_flag_gives_that_device_with_its_permissions(env: Env,
                                                            disk: loop.LoopDevice) -> None:
    script = (f"ls -l /dev/disk0; head -c {len(SECRET)} /dev/disk0; echo; "
              "echo x > /dev/disk0 && echo wrote")
    result = env.run("/bin/sh", "-c", script,
                     flags=("--network", "none", "--device", f"{disk.path}:/dev/disk0:r"))
    assert result.stdout.startswith("b"), result.stdout  # a block device node
    assert SECRET.decode() in result.stdout
    assert "wrote" not in result.stdout and "Operation not permitted" in result.stderr


def test_devices_key_of_a_definition(ctrd: Daemon, disk: loop.LoopDevice) -> None:
    ctrd.define("disk", f"""
[container]
image = "busybox"
command = ["/bin/sh", "-c", "head -c {len(SECRET)} /dev/xvdb; echo; sleep 60"]
[network]
mode = "none"
[[devices]]
path = "{disk.path}"
target = "/dev/xvdb"
permissions = "r"
""")
    ctrd.start()
    ctrd.ctl("start", "disk")
    ctrd.wait_for("disk", lambda _: SECRET.decode() in ctrd.ctl("logs", "disk").stdout)


def test_check_names_each_bad_device_key(ctrd: Daemon, tmp_path: Path) -> None:
    ctrd.define("bad", """
[container]
image = "busybox"
[[devices]]
path = "/etc/passwd"
[[devices]]
path = "/dev/null"
target = "/etc/null"
permissions = "rx"
[[devices]]
target = "/dev/x"
""")
    result = ctrd.env.ctrctl("--config-dir", str(ctrd.config_dir), "check", "bad")
    assert result.returncode != 0
    for expected in ("devices[0].path: /etc/passwd is not a device node",
                     "devices[1].target: a device's path inside must be under /dev/",
                     "devices[1].permissions: not device permissions: 'rx'",
                     "devices[2].path: missing"):
        assert expected in result.stderr, result.stderr


# -- the v2 program's verdicts, on this host's cgroup2 (controller-less, but device programs
# run on every cgroup2 hierarchy) ---------------------------------------------------------------

@pytest.fixture
def cgroup2() -> Iterator[Path]:
    if not (UNIFIED / "cgroup.procs").exists():
        pytest.fail("this host has no cgroup2 hierarchy at /sys/fs/cgroup/unified")
    path = UNIFIED / f"ctr-test-devices-{secrets.token_hex(3)}"
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()  # the child has exited: the cgroup is empty


Attempt = tuple[str, Path, int, int]  # ("open", PATH, FLAGS, 0) or ("mknod", PATH, MODE, RDEV)


def _attempts_in(cgroup: Path, attempts: list[Attempt]) -> list[str]:
    """In a child moved into ``cgroup``: each attempt made; "ok" or the errno's name."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            (cgroup / "cgroup.procs").write_text("0")
            results = []
            for kind, path, arg, rdev in attempts:
                try:
                    if kind == "open":
                        os.close(os.open(path, arg))
                    else:
                        os.mknod(path, arg, rdev)
                    results.append("ok")
                except OSError as exc:
                    results.append(errno.errorcode[exc.errno or 0])
            os.write(write_end, " ".join(results).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as out:
        text = out.read()
    os.waitpid(pid, 0)
    return text.split()


def test_v2_program_allows_exactly_its_rules(cgroup2: Path, tmp_path: Path,
                                             disk: loop.LoopDevice) -> None:
    disk_major, disk_minor = _numbers(disk)
    nodes = {"null": (stat.S_IFCHR, 1, 3), "zero": (stat.S_IFCHR, 1, 5),
             "disk": (stat.S_IFBLK, disk_major, disk_minor)}
    for name, (kind, major, minor) in nodes.items():
        os.mknod(tmp_path / name, kind | 0o666, os.makedev(major, minor))
    v2_devices.attach(cgroup2, v2_devices.program([
        DeviceRule("c", access="m"),  # make any character node
        DeviceRule("c", 1, 3, "rw"),  # null: read and write
        DeviceRule("b", disk_major, disk_minor, "r"),  # the disk: read only
    ]))
    verdicts = _attempts_in(cgroup2, [
        ("open", tmp_path / "null", os.O_RDWR, 0),
        ("open", tmp_path / "zero", os.O_RDONLY, 0),
        ("open", tmp_path / "disk", os.O_RDONLY, 0),
        ("open", tmp_path / "disk", os.O_WRONLY, 0),
        ("mknod", tmp_path / "zero-copy", stat.S_IFCHR | 0o600, os.makedev(1, 5)),
        ("mknod", tmp_path / "disk-copy", stat.S_IFBLK | 0o600,
         os.makedev(disk_major, disk_minor)),
    ])
    assert verdicts == ["ok", "EPERM", "ok", "EPERM", "ok", "EPERM"]
    # Outside the cgroup, every one of them is allowed: the refusals are the program's.
    assert _attempts_in(UNIFIED, [("open", tmp_path / "zero", os.O_RDONLY, 0),
                                  ("open", tmp_path / "disk", os.O_WRONLY, 0)]) == ["ok", "ok"]
