"""The container's file system, assembled inside its own mount namespace.

The parent plans (``RootfsPlan``: plain paths, decided before fork, so the child only mounts);
the child, already in its new mount namespace, runs ``assemble`` and then ``pivot``. Every mount
lives in that namespace and vanishes with it: a crash cannot leak one onto the host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from supervisor.runtime import devices, syscalls
from supervisor.runtime.paths import secure_join
from supervisor.runtime.security import MASKED_PATHS, READONLY_PATHS


@dataclass(frozen=True)
class Layer:
    """A read-only directory, optionally with a private writable upper layer over it (overlayfs)."""

    lower: str
    upper: str | None = None
    work: str | None = None
    # Empty mount points that ``lower`` lacks, layered over it: a later mount whose target lies
    # inside a read-only layer cannot create its mount point there.
    skeleton: str | None = None


@dataclass(frozen=True)
class PlannedMount:
    """One user mount with its source resolved to something mountable."""

    target: str
    kind: Literal["bind", "tmpfs", "overlay"]
    source: str = ""
    read_only: bool = False
    size: int | None = None
    layer: Layer | None = None  # kind == "overlay"


@dataclass(frozen=True)
class LoopSource:
    """A file-system image attached to a loop device, mounted read-only as the lower layer."""

    device: str
    fstype: str
    mountpoint: str


@dataclass(frozen=True)
class RootfsPlan:
    root: str  # the mount point that becomes the container's /
    layer: Layer
    loop: LoopSource | None = None
    mounts: tuple[PlannedMount, ...] = ()
    console: str | None = None
    privileged: bool = False
    mount_sys: bool = True


_NOSUID_NODEV_NOEXEC = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC


def _mount_layer(layer: Layer, target: str) -> None:
    if layer.upper is None and layer.skeleton is None:
        syscalls.mount(layer.lower, target, None, syscalls.MS_BIND | syscalls.MS_REC)
        syscalls.mount(None, target, None,
                       syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
        return
    lowers = f"{layer.skeleton}:{layer.lower}" if layer.skeleton else layer.lower
    writable = f",upperdir={layer.upper},workdir={layer.work}" if layer.upper else ""
    # With no upper layer an overlay is read-only by construction.
    syscalls.mount("overlay", target, "overlay", 0, f"lowerdir={lowers}{writable}")


def _ensure_target(root: str, target: str, like_file: bool) -> str:
    path = secure_join(root, target)
    if like_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "a").close()
    else:
        os.makedirs(path, exist_ok=True)
    return path


def _apply_user_mount(root: str, mount: PlannedMount) -> None:
    is_file = mount.kind == "bind" and not os.path.isdir(mount.source)
    path = _ensure_target(root, mount.target, like_file=is_file)
    if mount.kind == "tmpfs":
        size = f",size={mount.size}" if mount.size else ""
        flags = syscalls.MS_NOSUID | syscalls.MS_NODEV
        syscalls.mount("tmpfs", path, "tmpfs", flags, f"mode=755{size}")
    elif mount.kind == "overlay":
        assert mount.layer is not None
        _mount_layer(mount.layer, path)
    else:
        syscalls.mount(mount.source, path, None, syscalls.MS_BIND | syscalls.MS_REC)
    if mount.read_only and mount.kind != "overlay":
        syscalls.mount(None, path, None,
                       syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)


def _mask(root: str) -> None:
    """Hide host-revealing /proc and /sys paths and make the dangerous ones read-only."""
    for target in MASKED_PATHS:
        path = f"{root}{target}"
        if os.path.isdir(path):
            syscalls.mount("tmpfs", path, "tmpfs", syscalls.MS_RDONLY, "size=0")
        elif os.path.exists(path):
            syscalls.mount(f"{root}/dev/null", path, None, syscalls.MS_BIND)
    for target in READONLY_PATHS:
        path = f"{root}{target}"
        if os.path.exists(path):
            syscalls.mount(path, path, None, syscalls.MS_BIND | syscalls.MS_REC)
            syscalls.mount(None, path, None,
                           syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)


def assemble(plan: RootfsPlan) -> None:
    """Build the whole tree under ``plan.root``; runs in the container's mount namespace."""
    # Nothing we mount may propagate back to the host, and no host mount event into us.
    syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    if plan.loop:
        syscalls.mount(plan.loop.device, plan.loop.mountpoint, plan.loop.fstype,
                       syscalls.MS_RDONLY)
    _mount_layer(plan.layer, plan.root)
    root = plan.root
    proc = _ensure_target(root, "/proc", like_file=False)
    syscalls.mount("proc", proc, "proc", _NOSUID_NODEV_NOEXEC)
    if plan.mount_sys:
        sys_dir = _ensure_target(root, "/sys", like_file=False)
        sys_flags = _NOSUID_NODEV_NOEXEC | (0 if plan.privileged else syscalls.MS_RDONLY)
        syscalls.mount("sysfs", sys_dir, "sysfs", sys_flags)
    devices.populate(_ensure_target(root, "/dev", like_file=False), plan.console)
    tmp = _ensure_target(root, "/tmp", like_file=False)
    syscalls.mount("tmpfs", tmp, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV, "mode=1777")
    for mount in plan.mounts:
        _apply_user_mount(root, mount)
    if not plan.privileged:
        _mask(root)


def pivot(root: str) -> None:
    """Make ``root`` the process's / and detach the old root entirely (pivot_root, not chroot)."""
    os.chdir(root)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")
