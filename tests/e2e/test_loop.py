"""Loop devices: attach a real ext4 image, mount it in a private mount namespace, leak nothing."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.runtime import syscalls
from supervisor.runtime.loop import LoopDevice, UnknownFilesystem, attach, detect_fstype

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices need root")


def _losetup() -> str:
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout


def _wait_detached(image: Path) -> None:
    deadline = time.monotonic() + 5
    while str(image) in _losetup():
        assert time.monotonic() < deadline, f"{image} still attached: {_losetup()}"
        time.sleep(0.02)


def _sysfs(device: LoopDevice, name: str) -> str:
    return (Path("/sys/block") / device.path.name / name).read_text().strip()


@pytest.fixture
def ext4_image(tmp_path: Path) -> Iterator[Path]:
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "motd").write_text("hello from ext4\n")
    image = tmp_path / "root.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(src), str(image), "8M"], check=True)
    yield image
    _wait_detached(image)


def _mount_privately(device: LoopDevice, mnt: Path) -> None:
    """In a forked child: a private mount namespace with ``device`` mounted read-only on ``mnt``;
    the mount goes away with the child."""
    syscalls.unshare(syscalls.CLONE_NEWNS)
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.mount(str(device.path), str(mnt), "ext4", syscalls.MS_RDONLY)


def _run_child(device: LoopDevice, mnt: Path, body: Callable[[], str]) -> str:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            _mount_privately(device, mnt)
            os.write(write_end, body().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as r:
            out = r.read().decode()
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return out


def test_attach_mount_read_and_detach(ext4_image: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()

    def read_and_try_write() -> str:
        motd = (mnt / "etc" / "motd").read_text()
        try:
            (mnt / "new").write_text("x")
        except OSError as e:
            return f"{motd}write: {errno.errorcode[e.errno or 0]}"
        return f"{motd}write: ok"

    with attach(ext4_image) as device:
        assert device.path.is_block_device()
        assert _sysfs(device, "ro") == "1"
        assert _sysfs(device, "loop/autoclear") == "1"
        assert _sysfs(device, "loop/backing_file") == str(ext4_image)
        assert f"({ext4_image})" in _losetup()
        out = _run_child(device, mnt, read_and_try_write)
    assert out == "hello from ext4\nwrite: EROFS"
    assert device.fd == -1
    _wait_detached(ext4_image)
    assert not any(" ext4 " in line and str(mnt) in line
                   for line in Path("/proc/self/mountinfo").read_text().splitlines())


def test_mounted_device_outlives_our_fd_and_frees_itself(ext4_image: Path, tmp_path: Path) -> None:
    """The runtime's pattern: attach, mount in the container's namespace, close. The device must
    stay while mounted and go when the namespace goes, with nobody calling detach."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    device = attach(ext4_image)
    pid = -1
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _mount_privately(device, mnt)
                device.close()
                os.write(from_child_w, b"mounted")
                os.read(to_child_r, 1)
                os.write(from_child_w, (mnt / "etc" / "motd").read_bytes())
                code = 0
            finally:
                os._exit(code)
        assert os.read(from_child_r, 7) == b"mounted"
        device.close()
        time.sleep(0.05)
        assert str(ext4_image) in _losetup(), "a mounted device must stay attached"
        os.write(to_child_w, b"g")
        assert os.read(from_child_r, 100) == b"hello from ext4\n"
    finally:
        device.close()
        for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
            os.close(fd)
        if pid > 0:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
    _wait_detached(ext4_image)


def test_read_write_attach_and_two_devices_at_once(ext4_image: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.ext4"
    subprocess.run(["mkfs.ext4", "-q", str(other), "8M"], check=True)
    with attach(ext4_image, read_only=False) as rw, attach(other) as ro:
        assert rw.path != ro.path
        assert _sysfs(rw, "ro") == "0" and _sysfs(ro, "ro") == "1"
    _wait_detached(other)


def test_attach_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        attach(tmp_path / "nope.img")


def test_detect_fstype_of_a_real_ext4(ext4_image: Path) -> None:
    assert detect_fstype(ext4_image) == "ext4"


@pytest.mark.parametrize(
    "offset, magic, fstype",
    [
        (0, b"hsqs", "squashfs"),
        (0, b"XFSB", "xfs"),
        (1024, struct.pack("<I", 0xE0F5E1E2), "erofs"),
        (1024 + 0x38, struct.pack("<H", 0xEF53), "ext4"),
        (0x10040, b"_BHRfS_M", "btrfs"),
    ],
)
def test_detect_fstype_by_superblock_magic(
    tmp_path: Path, offset: int, magic: bytes, fstype: str
) -> None:
    image = tmp_path / "fs.img"
    with open(image, "wb") as f:
        f.truncate(1 << 20)
        f.seek(offset)
        f.write(magic)
    assert detect_fstype(image) == fstype


def test_detect_fstype_refuses_unknown_contents(tmp_path: Path) -> None:
    image = tmp_path / "zeros.img"
    image.write_bytes(bytes(128 * 1024))
    with pytest.raises(UnknownFilesystem, match=r"zeros\.img.*ext2/3/4, squashfs"):
        detect_fstype(image)
