"""Loop devices for file-system images, attached with the kernel's ioctls (no losetup).

A device is configured in one LOOP_CONFIGURE call (Linux >= 5.8) with LO_FLAGS_AUTOCLEAR: the
kernel detaches it when its last user goes away, so once the image is mounted the caller closes
its fd and the device lives exactly as long as the mount, and a crash leaks nothing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from pathlib import Path
from types import TracebackType

# linux/loop.h
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
_LO_NAME_SIZE = 64

# struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]; } with
# loop_info64 { u64 device, inode, rdevice, offset, sizelimit; u32 number, encrypt_type,
# encrypt_key_size, flags; u8 file_name[64], crypt_name[64], encrypt_key[32]; u64 init[2]; }
_LOOP_CONFIG = struct.Struct("=II5Q4I64s64s32s2Q8Q")

_ATTACH_TRIES = 20


class LoopDevice:
    """An attached loop device and our fd on it.

    ``close()`` drops our reference; the kernel detaches the device once nothing uses it.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> LoopDevice:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LoopDevice({str(self.path)!r}, fd={self.fd})"


def attach(path: Path, read_only: bool = True) -> LoopDevice:
    """Attach the file ``path`` to a free loop device, with autoclear (and read-only by default)."""
    mode = os.O_RDONLY if read_only else os.O_RDWR
    backing = os.open(path, mode | os.O_CLOEXEC)
    try:
        flags = LO_FLAGS_AUTOCLEAR | (LO_FLAGS_READ_ONLY if read_only else 0)
        name = os.fsencode(os.path.abspath(path))[: _LO_NAME_SIZE - 1]
        config = _LOOP_CONFIG.pack(
            backing, 0, 0, 0, 0, 0, 0, 0, 0, 0, flags, name, b"", b"", 0, 0, *([0] * 8)
        )
        for _ in range(_ATTACH_TRIES):
            device = _free_device()
            fd = os.open(device, mode | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, LOOP_CONFIGURE, config)
            except OSError as e:
                os.close(fd)
                if e.errno == errno.EBUSY:  # another process took it after GET_FREE
                    continue
                raise OSError(e.errno, f"LOOP_CONFIGURE {device} with {path}: {e.strerror}") from e
            return LoopDevice(device, fd)
        raise OSError(errno.EBUSY, f"no free loop device for {path} after {_ATTACH_TRIES} tries")
    finally:
        os.close(backing)


def _free_device() -> Path:
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        number = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
    finally:
        os.close(control)
    return Path(f"/dev/loop{number}")


# (offset, magic, fstype) in the order they are tried; ext2 and ext3 are mounted by the ext4
# driver, so the whole family is reported as "ext4".
_MAGICS = (
    (0, b"hsqs", "squashfs"),
    (0, b"XFSB", "xfs"),
    (1024, struct.pack("<I", 0xE0F5E1E2), "erofs"),
    (1024 + 0x38, struct.pack("<H", 0xEF53), "ext4"),
    (0x10040, b"_BHRfS_M", "btrfs"),
)
KNOWN_FSTYPES = ("ext2/3/4", "squashfs", "xfs", "btrfs", "erofs")


class UnknownFilesystem(ValueError):
    """A file whose contents are none of the file-system types we can mount."""


def detect_fstype(path: Path) -> str:
    """The type to mount ``path`` with, read from its superblock magic."""
    with open(path, "rb") as f:
        head = f.read(max(offset + len(magic) for offset, magic, _ in _MAGICS))
    for offset, magic, fstype in _MAGICS:
        if head[offset:offset + len(magic)] == magic:
            return fstype
    raise UnknownFilesystem(
        f"{path}: not a file-system image we can mount (known: {', '.join(KNOWN_FSTYPES)})"
    )
