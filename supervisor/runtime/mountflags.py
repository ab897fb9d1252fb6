"""Mount flags and propagations by name (``supervisor.model.mounts``) as mount(2)'s MS_* bits
(linux/mount.h)."""

from __future__ import annotations

from collections.abc import Iterable

MS_SYNCHRONOUS = 16
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

FLAGS = {
    "nosuid": 2, "nodev": 4, "noexec": 8, "sync": MS_SYNCHRONOUS, "dirsync": MS_DIRSYNC,
    "mand": MS_MANDLOCK, "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME, "lazytime": MS_LAZYTIME,
    "silent": MS_SILENT, "iversion": MS_I_VERSION, "nosymfollow": MS_NOSYMFOLLOW,
}
_PROPAGATIONS = {"private": MS_PRIVATE, "shared": MS_SHARED, "slave": MS_SLAVE,
                 "unbindable": MS_UNBINDABLE}


def flags(names: Iterable[str]) -> int:
    result = 0
    for name in names:
        result |= FLAGS[name]
    return result


def propagation(name: str | None) -> int:
    """``rshared`` as MS_SHARED | MS_REC; None as 0 (none asked for)."""
    if name is None:
        return 0
    recursive = name.startswith("r") and name[1:] in _PROPAGATIONS
    return _PROPAGATIONS[name[1:] if recursive else name] | (MS_REC if recursive else 0)
