"""The container's file system, assembled inside its own mount namespace.

The parent plans (``RootfsPlan``: plain paths, decided before fork, so the child only mounts);
the child, already in its new mount namespace, runs ``assemble`` and then ``pivot``. Every mount
lives in that namespace and vanishes with it: a crash cannot leak one onto the host.

With a user namespace (``RootfsPlan.sources``, see userns.py) PID 1 mounts as container root,
which is nobody to the host's files: the parent hands it every host source as a detached mount
(``open_sources``: layers idmapped, binds as they are, a file-system image mounted), PID 1 reaches
its own directories through descriptors it opened while it was still the host's uid 0
(``reachable``), attaches the sources (``attach_sources``), and then assembles as without one,
except that every layer is an overlayfs mounted inside the namespace (whose superblock the kernel
treats as nodev, so no device node of an image is usable) and /dev's nodes are binds.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

from supervisor.model.idmap import IdMap
from supervisor.model.mounts import IdMapping
from supervisor.model.security import MASKED_PATHS, READONLY_PATHS
from supervisor.runtime import cgroupmount, devices, syscalls
from supervisor.runtime.paths import secure_join
from supervisor.runtime.userns import namespace_with


@dataclass(frozen=True)
class Layer:
    """Read-only directories (an image's layers, top first), optionally with a private writable
    upper layer over them (overlayfs)."""

    lowers: tuple[str, ...]
    upper: str | None = None
    work: str | None = None
    # Empty mount points that the lowers lack, layered over them: a later mount whose target
    # lies inside a read-only layer cannot create its mount point there.
    skeleton: str | None = None
    # The directory relative ``lowers`` are taken from. overlayfs takes every lower directory in
    # one mount option of at most a page, so an image's layers are named by short links relative
    # to the store and the mount is made from there (as docker's overlay2 does).
    base: str | None = None
    # The one lower directory is the root itself, bound writable: an OCI bundle's root, which
    # the container writes in place.
    in_place: bool = False

    def lower_path(self, index: int) -> str:
        """``lowers[index]`` as a path from anywhere."""
        return os.path.join(self.base or "", self.lowers[index])


@dataclass(frozen=True)
class PlannedMount:
    """One user mount with its source resolved to something mountable."""

    target: str
    kind: Literal["bind", "tmpfs", "overlay", "fs"]
    source: str = ""
    read_only: bool = False
    size: int | None = None
    layer: Layer | None = None  # kind == "overlay"
    # An OCI bundle's finer mounts: kind "fs" is a file system of ``fstype`` (proc, sysfs,
    # devpts, mqueue, tmpfs, cgroup, cgroup2) mounted with ``data``; ``flags`` are MS_* ones
    # (a bind is remounted with them), ``propagation`` MS_SHARED... applied after the mount.
    fstype: str = ""
    data: str = ""
    flags: int = 0
    propagation: int = 0
    recursive: bool = True  # a bind: with the mounts under its source
    idmap: IdMapping | None = None  # an idmapped bind (MountSpec.idmap), through ``id_map``
    id_map: IdMap | None = None


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
    # With a user namespace: where PID 1 attaches the sources the parent hands it (a directory
    # of the container's state, filled with mount points by ``open_sources``); None without.
    sources: str | None = None
    bind_sys: bool = False  # the host's /sys instead of a new sysfs (see _mount_sys)
    # A read-only sysfs of the container's network namespace made ahead (``new_sysfs``, by the
    # warm pool), as a /proc/PID/fd/N path of its detached mount: attached instead of a new one
    # unless privileged (whose /sys is writable).
    sysfs: str | None = None
    devices: tuple[devices.Node, ...] = ()  # host devices given to the container
    masked_paths: tuple[str, ...] = MASKED_PATHS  # hidden unless privileged
    read_only_paths: tuple[str, ...] = READONLY_PATHS
    # False (an OCI bundle): no /proc, /sys, /dev or /tmp of ctr's, only ``mounts``, and the
    # default nodes made in the /dev they give (see devices.make_nodes).
    system_mounts: bool = True
    propagation: int = syscalls.MS_REC | syscalls.MS_PRIVATE  # of / before anything is mounted
    # Of the container's / after pivot_root: a bundle's shared rootfsPropagation makes its
    # mounts shared with namespaces made from it, never with the host's (pivot_root needs a
    # private parent, and a shared / would carry every mount of set-up out to the host).
    final_propagation: int = 0
    # An in-place root that is to be read-only: remounted so once everything is mounted on it.
    read_only_root: bool = False
    # Move the root over / and chroot instead of pivot_root, which a root on a ramfs cannot
    # take (runc's --no-pivot; the host's mounts then stay under the container's /).
    no_pivot: bool = False


_NOSUID_NODEV_NOEXEC = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC
_PAGE = os.sysconf("SC_PAGESIZE")  # mount(2) copies at most a page of options


def _mount_layer(layer: Layer, target: str, empty: str | None = None) -> None:
    """``empty``: in a user namespace, an empty directory. There every layer is an overlay, also
    a lone read-only one, which needs a second lower layer."""
    if layer.in_place:
        syscalls.mount(layer.lower_path(0), target, None, syscalls.MS_BIND | syscalls.MS_REC)
        return
    lone = len(layer.lowers) == 1 and layer.upper is None and layer.skeleton is None
    if empty is None and lone:
        syscalls.mount(layer.lower_path(0), target, None, syscalls.MS_BIND | syscalls.MS_REC)
        syscalls.mount(None, target, None,
                       syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
        return
    lowers = [*([layer.skeleton] if layer.skeleton else []), *layer.lowers]
    if empty is not None and lone:
        lowers.append(empty)
    writable = f",upperdir={layer.upper},workdir={layer.work}" if layer.upper else ""
    # trusted.* xattrs (opaque directories, whiteouts' marks) are the host's; user.* inside.
    userxattr = ",userxattr" if empty is not None else ""
    # With no upper layer an overlay is read-only by construction.
    options = f"lowerdir={':'.join(lowers)}{writable}{userxattr}"
    if len(options) >= _PAGE:
        raise OSError(errno.E2BIG, f"{len(layer.lowers)} layers do not fit in one overlay "
                      f"mount option ({len(options)} bytes, at most {_PAGE - 1})")
    with _working_dir(layer.base):
        syscalls.mount("overlay", target, "overlay", 0, options)


@contextlib.contextmanager
def _working_dir(path: str | None) -> Iterator[None]:
    """In ``path`` for the block (nothing if None), then back where we were."""
    if path is None:
        yield
        return
    here = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(path)
        yield
    finally:
        os.fchdir(here)
        os.close(here)


def _ensure_target(root: str, target: str, like_file: bool) -> str:
    path = secure_join(root, target)
    if like_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "a").close()
    else:
        os.makedirs(path, exist_ok=True)
    return path


def _apply_user_mount(root: str, mount: PlannedMount, empty: str | None) -> None:
    is_file = mount.kind == "bind" and not os.path.isdir(mount.source)
    path = _ensure_target(root, mount.target, like_file=is_file)
    if mount.kind == "fs" or mount.flags or mount.propagation or not mount.recursive:
        _mount_with_options(path, mount)
        return
    if mount.kind == "tmpfs":
        size = f",size={mount.size}" if mount.size else ""
        flags = syscalls.MS_NOSUID | syscalls.MS_NODEV
        syscalls.mount("tmpfs", path, "tmpfs", flags, f"mode=755{size}")
    elif mount.kind == "overlay":
        assert mount.layer is not None
        _mount_layer(mount.layer, path, empty)
    else:
        syscalls.mount(mount.source, path, None, syscalls.MS_BIND | syscalls.MS_REC)
    if mount.read_only and mount.kind != "overlay":
        syscalls.mount(None, path, None,
                       syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)


def _mount_with_options(path: str, mount: PlannedMount) -> None:
    """An OCI bundle's mount: a file system, or a bind then remounted with its flags; its
    propagation last."""
    read_only = syscalls.MS_RDONLY if mount.read_only else 0
    if mount.kind == "bind":
        recursive = syscalls.MS_REC if mount.recursive else 0
        syscalls.mount(mount.source, path, None, syscalls.MS_BIND | recursive)
        if mount.flags or read_only:
            syscalls.mount(None, path, None, syscalls.MS_BIND | syscalls.MS_REMOUNT | mount.flags
                           | read_only)
    elif mount.fstype == "cgroup":
        cgroupmount.mount_hierarchies(path, mount.flags | read_only)
    else:
        syscalls.mount(mount.source or mount.fstype, path, mount.fstype, mount.flags | read_only,
                       mount.data or None)
    if mount.propagation:
        syscalls.mount(None, path, None, mount.propagation)


def _mask(plan: RootfsPlan) -> None:
    """Hide host-revealing /proc and /sys paths and make the dangerous ones read-only (paths
    resolved inside the root: one of a definition's may cross the image's symlinks)."""
    root = plan.root
    for target in plan.masked_paths:
        path = secure_join(root, target)
        if os.path.isdir(path):
            syscalls.mount("tmpfs", path, "tmpfs", syscalls.MS_RDONLY, "size=0")
        elif os.path.exists(path):
            syscalls.mount(f"{root}/dev/null", path, None, syscalls.MS_BIND)
    for target in plan.read_only_paths:
        path = secure_join(root, target)
        if os.path.exists(path):
            syscalls.mount(path, path, None, syscalls.MS_BIND | syscalls.MS_REC)
            syscalls.mount(None, path, None,
                           syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)


def _mount_sys(plan: RootfsPlan) -> None:
    """A new sysfs, read-only unless privileged (or the read-only one made ahead, ``plan.sysfs``).
    In a user namespace that does not own the network namespace (network "host") the kernel
    refuses one: the host's /sys, bound read-only, as runc does for rootless containers."""
    sys_dir = _ensure_target(plan.root, "/sys", like_file=False)
    read_only = 0 if plan.privileged else syscalls.MS_RDONLY
    if plan.bind_sys:
        syscalls.mount("/sys", sys_dir, None, syscalls.MS_BIND | syscalls.MS_REC)
        if read_only:
            syscalls.mount(None, sys_dir, None,
                           syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
    elif plan.sysfs is not None and read_only:
        tree = os.open(plan.sysfs, os.O_PATH | os.O_CLOEXEC)
        try:
            syscalls.move_mount(tree, sys_dir)
        finally:
            os.close(tree)
    else:
        syscalls.mount("sysfs", sys_dir, "sysfs", _NOSUID_NODEV_NOEXEC | read_only)


def new_sysfs() -> int:
    """A detached, read-only sysfs of the calling thread's network namespace, as
    ``_mount_sys`` mounts one. The kernel looks for an existing sysfs of the namespace among
    every sysfs on the host, a cost that grows with the containers running (0.3-2 ms at
    2000): the warm pool pays it ahead, off the start's way."""
    return syscalls.fsmount("sysfs", "sysfs", ("ro",),
                            syscalls.MOUNT_ATTR_RDONLY | syscalls.MOUNT_ATTR_NOSUID
                            | syscalls.MOUNT_ATTR_NODEV | syscalls.MOUNT_ATTR_NOEXEC)


def assemble(plan: RootfsPlan) -> None:
    """Build the whole tree under ``plan.root``; runs in the container's mount namespace (with a
    user namespace: on a plan through ``reachable`` and ``attach_sources``)."""
    # Nothing we mount may propagate back to the host, and no host mount event into us (unless
    # a bundle asks for its rootfsPropagation).
    syscalls.mount(None, "/", None, plan.propagation)
    if plan.loop:
        syscalls.mount(plan.loop.device, plan.loop.mountpoint, plan.loop.fstype,
                       syscalls.MS_RDONLY)
    empty = _empty(plan)
    _mount_layer(plan.layer, plan.root, empty)
    root = plan.root
    if plan.system_mounts:
        _system_mounts(plan)
    for mount in plan.mounts:
        _apply_user_mount(root, mount, empty)
    if not plan.system_mounts:
        devices.make_nodes(_ensure_target(root, "/dev", like_file=False), plan.console,
                           bind_nodes=plan.sources is not None, nodes=plan.devices)
    if not plan.privileged:
        _mask(plan)


def _system_mounts(plan: RootfsPlan) -> None:
    """ctr's /proc, /sys, /dev and /tmp, under the definition's mounts."""
    root = plan.root
    proc = _ensure_target(root, "/proc", like_file=False)
    syscalls.mount("proc", proc, "proc", _NOSUID_NODEV_NOEXEC)
    if plan.mount_sys:
        _mount_sys(plan)
    devices.populate(_ensure_target(root, "/dev", like_file=False), plan.console,
                     bind_nodes=plan.sources is not None, nodes=plan.devices)
    tmp = _ensure_target(root, "/tmp", like_file=False)
    syscalls.mount("tmpfs", tmp, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV, "mode=1777")


# -- with a user namespace --------------------------------------------------------------------


def _empty(plan: RootfsPlan) -> str | None:
    return None if plan.sources is None else f"{plan.sources}/empty"


def _slots(plan: RootfsPlan) -> list[tuple[str, PlannedMount | None, int]]:
    """Which sources there are, in order, as (mount point name, user mount, lower): ``0-I`` the
    root's lower layer I (top first; the mount None), ``N`` the lower layer or bind source of
    ``plan.mounts[N - 1]`` (a tmpfs or another file system has none)."""
    root = [(f"0-{i}", None, i) for i in range(len(plan.layer.lowers))]
    return root + [(str(n), m, 0) for n, m in enumerate(plan.mounts, 1)
                   if m.kind not in ("tmpfs", "fs")]


def open_sources(plan: RootfsPlan, userns: int) -> list[int]:
    """In the parent, as the host's root: a detached mount of each source of ``plan`` (in
    ``_slots`` order) for PID 1 in the user namespace ``userns``, and its mount point under
    ``plan.sources``. Lower layers are idmapped (the host's ids as the namespace's), binds not,
    nor an OCI bundle's root: the engine that made it gave it the owners the namespace maps."""
    assert plan.sources is not None
    os.makedirs(f"{plan.sources}/empty", exist_ok=True)
    fds: list[int] = []
    try:
        for slot, mount, lower in _slots(plan):
            if mount is None and plan.layer.in_place:
                fds.append(_bind_tree(plan.layer.lower_path(0), read_only=False))
            elif mount is None or mount.kind == "overlay":
                fds.append(_idmapped_layer(plan, mount, lower, userns))
            elif mount.idmap:
                fds.append(_idmapped_bind(mount, userns))
            else:
                fds.append(_bind_tree(mount.source, mount.read_only))
            _mount_point(f"{plan.sources}/{slot}", like_file=mount is not None
                         and mount.kind == "bind" and not os.path.isdir(mount.source))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _mount_point(path: str, like_file: bool) -> None:
    if like_file:
        open(path, "a").close()
    else:
        os.makedirs(path, exist_ok=True)


def _idmapped_layer(plan: RootfsPlan, mount: PlannedMount | None, lower: int,
                    userns: int) -> int:
    if mount is None and plan.loop is not None:
        what = f"file-system image ({plan.loop.fstype})"
        tree = syscalls.fsmount(plan.loop.fstype, plan.loop.device, ("ro",),
                                syscalls.MOUNT_ATTR_RDONLY | syscalls.MOUNT_ATTR_NODEV)
    else:
        layer = plan.layer if mount is None else mount.layer
        assert layer is not None
        what = layer.lower_path(lower)
        tree = syscalls.open_tree(what, syscalls.OPEN_TREE_CLONE
                                  | syscalls.OPEN_TREE_CLOEXEC | syscalls.AT_RECURSIVE)
    try:
        syscalls.mount_setattr(tree, syscalls.MOUNT_ATTR_IDMAP, userns)
    except OSError as exc:
        os.close(tree)
        reason = os.strerror(exc.errno or 0)
        raise OSError(exc.errno, f"{what}: its file system does not support idmapped mounts "
                      f"(mount_setattr: {reason}), which the layers of a container with a user "
                      "namespace need: move it to one that does (ext4, xfs, btrfs, tmpfs, "
                      "squashfs, erofs) or run the container without one") from None
    return tree


def _idmapped_bind(mount: PlannedMount, userns: int) -> int:
    """A bind whose files' owners are seen through its own maps (a user namespace made for
    them) or, without any, through the container's."""
    tree = syscalls.open_tree(mount.source, syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC
                              | (syscalls.AT_RECURSIVE if mount.recursive else 0))
    try:
        with contextlib.ExitStack() as stack:
            if mount.id_map is not None:
                userns = stack.enter_context(namespace_with(mount.id_map))
            syscalls.mount_setattr(tree, syscalls.MOUNT_ATTR_IDMAP, userns,
                                   recursive=mount.idmap == "ridmap")
        if mount.read_only:
            syscalls.mount_setattr(tree, syscalls.MOUNT_ATTR_RDONLY, recursive=mount.recursive)
    except BaseException as exc:
        os.close(tree)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"idmapped mount of {mount.source}: "
                          f"{os.strerror(exc.errno or 0)}") from None
        raise
    return tree


def _bind_tree(source: str, read_only: bool) -> int:
    tree = syscalls.open_tree(source, syscalls.OPEN_TREE_CLONE | syscalls.OPEN_TREE_CLOEXEC
                              | syscalls.AT_RECURSIVE)
    if read_only:
        try:
            syscalls.mount_setattr(tree, syscalls.MOUNT_ATTR_RDONLY)
        except BaseException:
            os.close(tree)
            raise
    return tree


def reachable(plan: RootfsPlan) -> RootfsPlan:
    """In PID 1, in its new mount namespace but still the host's uid 0: ``plan`` with the paths of
    the container's own directories (its state: root, mount points; its data: writable layers,
    skeletons) through descriptors of their parents. Container root is an unprivileged uid on the
    host and may be unable to search a directory above them (a 0700 one on the way)."""
    def layer(value: Layer | None) -> Layer | None:
        if value is None:
            return None
        return replace(value, upper=_reach(value.upper), work=_reach(value.work),
                       skeleton=_reach(value.skeleton))

    own_layer = layer(plan.layer)
    assert own_layer is not None
    return replace(plan, root=_reached(plan.root), layer=own_layer, sources=_reach(plan.sources),
                   mounts=tuple(replace(m, layer=layer(m.layer)) for m in plan.mounts))


def _reach(path: str | None) -> str | None:
    return None if path is None else _reached(path)


def _reached(path: str) -> str:
    head, tail = os.path.split(path)
    fd = os.open(head, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{tail}"


def attach_sources(plan: RootfsPlan, sources: list[int]) -> RootfsPlan:
    """In PID 1 (through ``reachable``): attach the parent's detached mounts (``open_sources``) at
    their mount points, and return ``plan`` taking its lower layers and binds from there."""
    assert plan.sources is not None
    slots = _slots(plan)
    for (slot, _, _), tree in zip(slots, sources, strict=True):
        syscalls.move_mount(tree, f"{plan.sources}/{slot}")
        os.close(tree)

    def sourced(index: int, mount: PlannedMount) -> PlannedMount:
        path = f"{plan.sources}/{index}"
        if mount.kind == "overlay":
            assert mount.layer is not None
            return replace(mount, layer=replace(mount.layer, lowers=(path,), base=None))
        return replace(mount, source=path) if mount.kind == "bind" else mount

    # The root's layers by their short slot names, from the sources' directory
    layers = tuple(slot for slot, mount, _ in slots if mount is None)
    return replace(plan, loop=None, layer=replace(plan.layer, lowers=layers, base=plan.sources),
                   mounts=tuple(sourced(i, m) for i, m in enumerate(plan.mounts, 1)))


def pivot(root: str, move: bool = False) -> None:
    """Make ``root`` the process's / and detach the old root entirely (pivot_root, not chroot);
    with ``move``, move it over / and chroot (``RootfsPlan.no_pivot``)."""
    os.chdir(root)
    if move:
        syscalls.mount(root, "/", None, syscalls.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")


def finish(plan: RootfsPlan) -> None:
    """After pivot_root: an in-place root made read-only now that everything is mounted on it,
    and its final propagation."""
    if plan.read_only_root:
        syscalls.mount(None, "/", None, syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY)
    if plan.final_propagation:
        syscalls.mount(None, "/", None, plan.final_propagation)
