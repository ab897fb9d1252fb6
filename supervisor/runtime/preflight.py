"""What can be known of a container's start before it is made, for ``ctrctl check``.

A definition can be valid key by key and still fail the moment it starts: its command is not in
the image (``/bin/httpd`` where Debian's busybox has ``/usr/sbin/httpd``), or a bind mount's
source does not exist. Both can be looked up without starting anything when the image is a
directory or an image of the store, whose layers are directories: the program is found as PID 1's
``execvpe`` would find it, by its path or through the ``PATH`` the container gets (its image's
and definition's environment, else the default), in the layers as the overlay shows them, top
first, with whiteouts, opaque directories and the image's own symlinks followed inside its root.
A tarball, a file-system image or an image not yet pulled cannot be looked into without unpacking,
mounting or fetching it: those commands are left to the start, as is a program under one of the
container's mount targets (it comes from the mount, not the image).

One check belongs to the host rather than a definition, and the runtime makes it before each
writable layer: a data directory on overlayfs (ctr inside another container) cannot hold an
overlay's upper layer, which the kernel refuses with a bare EINVAL at mount time.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from pathlib import Path

from supervisor.images import effective, locate
from supervisor.images.imageconfig import ImageConfig
from supervisor.model import defaults
from supervisor.model.errors import Invalid
from supervisor.model.spec import ContainerSpec
from supervisor.runtime import syscalls

Key = tuple[str | int, ...]
_SYMLINK_HOPS = 40  # as the kernel's MAXSYMLINKS


def problems(spec: ContainerSpec, data_dir: Path) -> list[tuple[Key, str]]:
    """What would fail the start of ``spec``, each with the key of the definition to fix."""
    found: list[tuple[Key, str]] = [
        (("mounts", index, "source"), f"{mount.source} does not exist on this host")
             for index, mount in enumerate(spec.mounts)
             if mount.type == "bind" and mount.source and not os.path.lexists(mount.source)]
    image = _image(spec.image, data_dir)
    if image is None:
        return found
    lowers, config = image
    try:
        run = effective.spec(spec, config, data_dir / "preflight")
    except Invalid as exc:
        return [*found, (("container", "image"), f"image {spec.image!r}: {exc}")]
    program = run.argv[0]
    if any(_under(program, mount.target) for mount in spec.mounts):
        return found
    environment = dict(run.environment)
    reason = _missing(lowers, program, environment.get("PATH", defaults.PATH))
    if reason is not None:
        found.append((_origin(spec, run), reason))
    return found


def upper_layer_problem(data_dir: Path, upper: Path) -> str | None:
    """Why ``upper``, a writable layer under ``data_dir``, cannot be an overlay's upper layer;
    None if it can (as far as its file system tells)."""
    if syscalls.statfs_type(str(upper)) != syscalls.OVERLAYFS_SUPER_MAGIC:
        return None
    return (f"the data directory {data_dir} is on overlayfs (as inside another container), "
            "which cannot hold a container's writable layer: give ctr a data directory on "
            "ext4, xfs, btrfs or tmpfs (--data-dir, CTR_DATA_DIR or data_dir in ctrd.toml; a "
            "volume or tmpfs mounted there will do), or run the container read-only "
            "(read_only = true, ctrctl run --read-only)")


def _image(value: str, data_dir: Path) -> tuple[tuple[str, ...], ImageConfig | None] | None:
    """The image's layer directories (top first) and config, if it is one to look into."""
    try:
        located = locate.locate(value, data_dir)
    except (locate.ImageNotFound, locate.InvalidImage):
        return None  # the definition's own check has said so
    if located.kind in ("path", "named"):
        assert located.path is not None
        return ((str(located.path),), None) if located.path.is_dir() else None
    if located.kind == "stored":
        from supervisor.images.store import Store  # only for an image of the store

        store = Store(data_dir)
        try:
            stored = store.resolve(value)
        except (LookupError, ValueError):
            return None
        return tuple(str(layer.path) for layer in reversed(stored.layers)), stored.config
    return None


def _origin(spec: ContainerSpec, run: ContainerSpec) -> Key:
    """The key that gave PID 1 its program: the definition's entrypoint or command, else the
    image (its Entrypoint or Cmd, or the shell run without either)."""
    if spec.entrypoint:
        return ("container", "entrypoint", 0)
    if not run.entrypoint and spec.command:
        return ("container", "command", 0)
    return ("container", "image")


def _under(path: str, target: str) -> bool:
    return path == target or path.startswith(target.rstrip("/") + "/")


def _missing(lowers: Sequence[str], program: str, search: str) -> str | None:
    """Why ``execvpe(program)`` would fail in the root of ``lowers``, or None if it would not."""
    if "/" in program:
        return _not_executable(lowers, posixpath.join("/", program))
    for directory in search.split(":"):
        if directory.startswith("/") and _not_executable(
                lowers, posixpath.join(directory, program)) is None:
            return None
    return f"{program} is in no directory of the image's PATH ({search})"


def _not_executable(lowers: Sequence[str], path: str) -> str | None:
    found = resolve(lowers, path)
    if found is None:
        elsewhere = [d for d in defaults.PATH.split(":")
                     if resolve(lowers, posixpath.join(d, posixpath.basename(path)))]
        hint = f" (it has {posixpath.join(elsewhere[0], posixpath.basename(path))})" \
            if elsewhere and posixpath.dirname(path) != elsewhere[0] else ""
        return f"{path} is not in the image{hint}"
    if not stat.S_ISREG(found.st_mode) or not found.st_mode & 0o111:
        return f"{path} in the image is not an executable file"
    return None


def resolve(lowers: Sequence[str], path: str) -> os.stat_result | None:
    """The ``stat`` of absolute ``path`` in the overlay of ``lowers`` (top first), symlinks
    followed inside that root as the container sees them; None if it does not exist there."""
    parts = _parts(path)
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        found = _lookup(lowers, "/".join([*done, part]))
        if found is None:
            return None
        full, st = found
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > _SYMLINK_HOPS:
                return None
            target = os.readlink(full)
            done = [] if target.startswith("/") else done
            parts = _parts(target) + parts
            continue
        if parts and not stat.S_ISDIR(st.st_mode):
            return None
        done.append(part)
    found = _lookup(lowers, "/".join(done)) if done else (lowers[0], os.stat(lowers[0]))
    return None if found is None else found[1]


def _parts(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def _lookup(lowers: Sequence[str], relative: str) -> tuple[str, os.stat_result] | None:
    """The topmost entry for ``relative`` (no symlink followed) and its path: a whiteout hides
    it, and an opaque directory on the way hides what lower layers have under it."""
    for layer in _visible(lowers, relative):
        full = os.path.join(layer, relative)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # a whiteout
            return None
        return full, st
    return None


def _visible(lowers: Sequence[str], relative: str) -> list[str]:
    """The layers that can show ``relative``: down to the first whose directory on the way is
    opaque (that one included)."""
    parents = [posixpath.dirname(relative)]
    while parents[-1]:
        parents.append(posixpath.dirname(parents[-1]))
    visible = []
    for layer in lowers:
        visible.append(layer)
        if any(_opaque(os.path.join(layer, parent)) for parent in parents if parent):
            break
    return visible


def _opaque(directory: str) -> bool:
    from supervisor.images.layers import OPAQUE_XATTRS

    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(directory, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False
