"""Mount options as mount(8), fstab and the OCI runtime spec write them: ``ro``, the flags
(``nosuid``, ``relatime``...), ``bind``/``rbind``, a propagation (``rprivate``) and the file
system's own options (``mode=755``, ``newinstance``), later options overriding earlier ones.

Flags are kept by name (the runtime owns the kernel's MS_* numbers). A word no file system would
know is refused rather than passed on: a misspelt ``nosiud`` must not leave a mount without the
flag its author meant, and a bind mount takes no file-system options at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from supervisor.model.errors import Invalid
from supervisor.model.values import items, string

Propagation = Literal["private", "rprivate", "shared", "rshared", "slave", "rslave",
                      "unbindable", "runbindable"]
PROPAGATIONS: tuple[Propagation, ...] = ("private", "rprivate", "shared", "rshared", "slave",
                                         "rslave", "unbindable", "runbindable")

# A flag that the option sets; its opposite clears it again.
FLAGS = {
    "nosuid": "suid", "nodev": "dev", "noexec": "exec", "sync": "async", "dirsync": "",
    "mand": "nomand", "noatime": "atime", "nodiratime": "diratime", "relatime": "norelatime",
    "strictatime": "nostrictatime", "lazytime": "nolazytime", "silent": "loud",
    "iversion": "noiversion", "nosymfollow": "symfollow",
}
_CLEARS = {opposite: flag for flag, opposite in FLAGS.items() if opposite}
BINDS = ("bind", "rbind")
IdMapping = Literal["idmap", "ridmap"]  # an idmapped bind: its top mount, or with those under it
IDMAPS: tuple[IdMapping, ...] = ("idmap", "ridmap")
# Every option word understood: what ``ctr-runtime features`` lists as mountOptions.
KNOWN = ("ro", "rw", "defaults", *FLAGS, *_CLEARS, *BINDS, *PROPAGATIONS, *IDMAPS)
# File-system options without a value that the mounts of containers use.
DATA_WORDS = ("newinstance", "nr_inodes", "noacl", "acl", "user_xattr", "nouser_xattr")


@dataclass(frozen=True)
class MountOptions:
    """What a list of options amounts to."""

    read_only: bool = False
    flags: tuple[str, ...] = ()  # names from FLAGS, sorted
    data: tuple[str, ...] = ()  # the file system's own, in order
    propagation: Propagation | None = None
    bind: Literal["bind", "rbind"] | None = None
    idmap: IdMapping | None = None


def _option(value: Any) -> str:
    text = string(value).strip()
    if not text or "," in text:
        raise Invalid(f"not one mount option: {value!r}")
    return text


def mount_options(value: Any, *, bind: bool) -> MountOptions:
    """An array of options; ``bind``: of a bind mount, which takes no file-system options."""
    if not isinstance(value, list):
        raise Invalid(f'expected an array of mount options, e.g. ["nosuid", "ro"], got {value!r}')
    read_only = False
    flags: set[str] = set()
    data: list[str] = []
    propagation: Propagation | None = None
    binding: Literal["bind", "rbind"] | None = None
    idmap: IdMapping | None = None
    for index, option in enumerate(items(_option, value)):
        if option in ("ro", "rw"):
            read_only = option == "ro"
        elif option in FLAGS:
            flags.add(option)
        elif option in _CLEARS:
            flags.discard(_CLEARS[option])
        elif option in PROPAGATIONS:
            propagation = option
        elif option in BINDS:
            binding = cast(Literal["bind", "rbind"], option)
        elif option in IDMAPS and bind:
            idmap = option
        elif option == "defaults":
            read_only, flags = False, set()
        elif bind or not ("=" in option or option in DATA_WORDS):
            where = "a bind mount takes" if bind else "known"
            raise Invalid(f"unknown mount option {option!r} ({where}: {', '.join(KNOWN)})",
                          at=(index,))
        else:
            data.append(option)
    return MountOptions(read_only, tuple(sorted(flags)), tuple(data), propagation, binding, idmap)


def propagation(value: Any) -> Propagation:
    """``private``, ``rshared``, ...: how mount events pass between this mount and its peers."""
    text = string(value)
    if text not in PROPAGATIONS:
        raise Invalid(f"not a propagation: {text!r} (one of {', '.join(PROPAGATIONS)})")
    return text
