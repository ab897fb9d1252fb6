"""Thin, checked wrappers over the Linux system calls Python 3.11 does not expose.

Every wrapper raises ``OSError`` with errno and a short context, so a failing step of container
set-up reports which call failed on what.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

# Namespace flags (linux/sched.h) are the model's: the default system-call filter needs them too.
from supervisor.model.namespaces import CLONE_NEWCGROUP as CLONE_NEWCGROUP
from supervisor.model.namespaces import CLONE_NEWIPC as CLONE_NEWIPC
from supervisor.model.namespaces import CLONE_NEWNET as CLONE_NEWNET
from supervisor.model.namespaces import CLONE_NEWNS as CLONE_NEWNS
from supervisor.model.namespaces import CLONE_NEWPID as CLONE_NEWPID
from supervisor.model.namespaces import CLONE_NEWUSER as CLONE_NEWUSER
from supervisor.model.namespaces import CLONE_NEWUTS as CLONE_NEWUTS
from supervisor.model.namespaces import NAMESPACE_FLAGS as NAMESPACE_FLAGS


def _load_libc() -> ctypes.CDLL:
    """glibc by its soname; ``find_library`` (which forks ``ldconfig -p``, ~5 ms of every
    start) only where that name is not the C library's."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c"), use_errno=True)


_libc = _load_libc()

# Mount flags (linux/mount.h).
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

# The new mount API (linux/mount.h): detached mounts, handed around as file descriptors.
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x100000

# prctl options.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2

# x86_64
_SYS_PIVOT_ROOT = 155
_SYS_CAPGET = 125
_SYS_CAPSET = 126
_SYS_OPEN_TREE = 428
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432
_SYS_BPF = 321
_SYS_CLOSE_RANGE = 436
_SYS_MOUNT_SETATTR = 442
_SYS_RT_SIGACTION = 13
CLOSE_RANGE_CLOEXEC = 4
_ALL_FDS = 0xFFFFFFFF


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def mount(
    source: str | None, target: str, fstype: str | None = None, flags: int = 0,
    data: str | None = None,
) -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
        f"mount {source or fstype} on {target}",
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def open_tree(path: str, flags: int) -> int:
    """A new file descriptor on the mount at ``path``; with OPEN_TREE_CLONE a detached copy of it
    (of its whole subtree with AT_RECURSIVE), attached nowhere until move_mount."""
    return _check(_libc.syscall(_SYS_OPEN_TREE, -100, _b(path), ctypes.c_uint(flags)),
                  f"open_tree {path}")


def move_mount(tree: int, target: str) -> None:
    """Attach the detached mount ``tree`` at ``target``."""
    _check(_libc.syscall(_SYS_MOVE_MOUNT, tree, b"", -100, _b(target),
                         ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount onto {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(tree: int, attr_set: int, userns_fd: int = 0, recursive: bool = True) -> None:
    """Set mount attributes on the mount ``tree`` (and its submounts); MOUNT_ATTR_IDMAP maps its
    files' owners through the user namespace ``userns_fd``."""
    attr = _MountAttr(attr_set, 0, 0, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    _check(_libc.syscall(_SYS_MOUNT_SETATTR, tree, b"", ctypes.c_uint(flags), ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")


def fsmount(fstype: str, source: str, flags: tuple[str, ...] = (), attrs: int = 0) -> int:
    """A new, detached mount of file system ``fstype`` on ``source`` (fsopen, fsconfig, fsmount)."""
    context = _check(_libc.syscall(_SYS_FSOPEN, _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC)),
                     f"fsopen {fstype}")
    try:
        _fsconfig(context, FSCONFIG_SET_STRING, "source", source)
        for flag in flags:
            _fsconfig(context, FSCONFIG_SET_FLAG, flag)
        _fsconfig(context, FSCONFIG_CMD_CREATE)
        return _check(_libc.syscall(_SYS_FSMOUNT, context, ctypes.c_uint(FSMOUNT_CLOEXEC),
                                    ctypes.c_uint(attrs)), f"fsmount {fstype} {source}")
    finally:
        os.close(context)


def _fsconfig(context: int, command: int, key: str | None = None,
              value: str | None = None) -> None:
    _check(_libc.syscall(_SYS_FSCONFIG, context, ctypes.c_uint(command), _b(key), _b(value), 0),
           f"fsconfig {key or 'create'}")


# The kernel's struct sigaction zeroed: SIG_DFL, no flags, an empty mask (x86_64's layout, 32
# bytes, is also large enough for the generic one).
_DEFAULT_ACTION = ctypes.create_string_buffer(32)
_LAST_SIGNAL = 64


def default_signal_dispositions() -> None:
    """Every signal back to its default action, through the system call itself: glibc's
    sigaction (and so Python's signal module) refuses its own two (32 and 33), so a launcher
    that ignores one of them, or any other, would otherwise pass that on to the command."""
    for sig in range(1, _LAST_SIGNAL + 1):
        if sig not in (9, 19):  # SIGKILL and SIGSTOP have no other action
            _check(_libc.syscall(_SYS_RT_SIGACTION, sig, _DEFAULT_ACTION, None, 8),
                   f"rt_sigaction {sig}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                    ctypes.c_ulong(arg5)),
        "prctl",
    )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capget() -> tuple[int, int, int]:
    """This thread's capability sets (64-bit masks): effective, permitted, inheritable."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.syscall(_SYS_CAPGET, ctypes.byref(header), data), "capget")
    return (data[0].effective | data[1].effective << 32,
            data[0].permitted | data[1].permitted << 32,
            data[0].inheritable | data[1].inheritable << 32)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_SYS_CAPSET, ctypes.byref(header), data), "capset")


def close_range(first: int, flags: int = 0) -> None:
    """Close (or with CLOSE_RANGE_CLOEXEC: mark close-on-exec) every descriptor from ``first`` up,
    in one system call whatever the descriptor table's size."""
    _check(_libc.syscall(_SYS_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(_ALL_FDS),
                         ctypes.c_uint(flags)), "close_range")


def close_inherited(keep: Iterable[int]) -> None:
    """In a child right after fork: close every descriptor but ``keep`` (and stdio).

    Close-on-exec does not help before exec: a forked child shares its parent's open files, and
    with them any flock another thread holds (the network leases' lock), which it would then keep
    until it execs — while the parent waits on that very lock.
    """
    low = 3
    for fd in sorted(set(keep) - {0, 1, 2}):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    close_range(low)


# bpf(2): just what a cgroup device program needs (linux/bpf.h).
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


class _BpfProgLoad(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16)]


class _BpfProgAttach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


def bpf_prog_load(prog_type: int, instructions: bytes, name: str) -> int:
    """Load an eBPF program; its descriptor. A program the verifier rejects raises with the
    verifier's log."""
    code = ctypes.create_string_buffer(instructions, len(instructions))
    license_ = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(4096)
    attr = _BpfProgLoad(prog_type=prog_type, insn_cnt=len(instructions) // 8,
                        insns=ctypes.addressof(code), license=ctypes.addressof(license_),
                        log_level=1, log_size=len(log), log_buf=ctypes.addressof(log),
                        prog_name=name.encode()[:15])
    fd = _libc.syscall(_SYS_BPF, BPF_PROG_LOAD, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        err = ctypes.get_errno()
        verifier = log.value.decode(errors="replace").strip()
        raise OSError(err, f"bpf prog load: {os.strerror(err)}"
                      + (f": {verifier}" if verifier else ""))
    return int(fd)


def bpf_prog_attach(target_fd: int, program_fd: int, attach_type: int, flags: int) -> None:
    attr = _BpfProgAttach(target_fd=target_fd, attach_bpf_fd=program_fd,
                          attach_type=attach_type, attach_flags=flags)
    _check(_libc.syscall(_SYS_BPF, BPF_PROG_ATTACH, ctypes.byref(attr), ctypes.sizeof(attr)),
           "bpf prog attach")


_SYS_KEYCTL = 250
KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring() -> None:
    """A new, anonymous session keyring for this process: the container holds no key of the
    caller's session (``ctr-runtime create --no-new-keyring`` keeps the caller's, as runc)."""
    _check(_libc.syscall(_SYS_KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None),
           "keyctl(JOIN_SESSION_KEYRING)")


OVERLAYFS_SUPER_MAGIC = 0x794C7630  # <linux/magic.h>
_STATFS_SIZE = 120  # struct statfs on 64-bit Linux; f_type is its first member (a long)


def statfs_type(path: str) -> int:
    """The magic number of the file system ``path`` is on (statfs's ``f_type``)."""
    buffer = ctypes.create_string_buffer(_STATFS_SIZE)
    _check(_libc.statfs(_b(path), buffer), f"statfs {path}")
    return ctypes.c_long.from_buffer(buffer).value


CGROUP2_SUPER_MAGIC = 0x63677270  # <linux/magic.h>
CLONE_PARENT = 0x8000  # <linux/sched.h>
CLONE_INTO_CGROUP = 0x200000000
_SYS_CLONE3 = 435
_SIGCHLD = 17
# The same C library, called with the GIL held (ctypes.CDLL releases it around every call): a
# fork must copy the interpreter in the state os.fork leaves it, GIL taken by this thread.
_libc_holding_gil = ctypes.PyDLL("libc.so.6", use_errno=True)


class _CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


def clone3(flags: int, cgroup: int = 0) -> int:
    """``os.fork()`` with clone3's ``flags``: CLONE_INTO_CGROUP, the child born in the cgroup2
    directory ``cgroup`` (a descriptor), where joining by a write to ``cgroup.procs`` would wait
    for an RCU grace period (5-17 ms measured here); CLONE_PARENT, the child our parent's.
    CPython's fork hooks run as os.fork runs them; glibc's do not, so only a single-threaded
    process may call it (the spawn handshake's intermediate, the warm pool's zygote)."""
    # A CLONE_PARENT child has its parent's exit signal, and clone3 wants none given then.
    args = _CloneArgs(flags=flags, exit_signal=0 if flags & CLONE_PARENT else _SIGCHLD,
                      cgroup=cgroup)
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = int(_libc_holding_gil.syscall(_SYS_CLONE3, ctypes.byref(args), ctypes.sizeof(args)))
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone3: {os.strerror(err)}")
    return pid
