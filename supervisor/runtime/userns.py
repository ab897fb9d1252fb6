"""User namespaces (``namespaces.user = true``, ``ctrctl run --userns``): container root is an
unprivileged range of host ids.

Each such container gets 65536 host uids and gids, BASE..BASE+65535, mapped to 0..65535 inside
(``0 BASE 65536`` in uid_map and gid_map), as systemd-nspawn's ``-U`` (``--private-users=pick``)
and podman's ``--userns=auto`` give. BASE is a multiple of 65536 in nspawn's range (0x80000 to
0x6FFF0000), picked from a hash of the name as nspawn does, so a container tends to get the same
range each run; taken ranges, host users and groups, and the ranges of /etc/subuid and
/etc/subgid are skipped. A range is leased by a file ``STATE_DIR/userns/ranges/BASE`` naming the
container, made under one flock (as the network's address leases), so two running containers never
share one; a lease whose container has no state directory any more is stale. The lease goes in the
container's state record and is released at teardown.
An OCI bundle names its own maps (``uidMappings``, ``gidMappings``: one range or several, as
podman's ``--uidmap`` makes them), which the engine that made it leased and gave its root's
owners: ctr-runtime takes them as given, without a lease.

How the namespace is made and populated (process.py has the handshake, mounts.py the mounts):

- The intermediate process creates it (it must: the pid namespace it creates next has to be
  owned by it, or container root could not mount /proc), tells the parent, and goes on at once;
  the parent writes uid_map and gid_map, while PID 1 is being forked and makes its network
  namespace. The shim that the intermediate becomes stays in that namespace as the host's uid 0,
  which is unmapped there: after exec it has no capability but CAP_KILL in that namespace (kept
  ambient, so that its death can still deliver PID 1's parent-death signal), none on the host, and
  the container cannot see it (it is outside the container's pid namespace).
- PID 1 joins its cgroups as the host's uid 0 (still the owner of the cgroup files), then
  becomes container root (``setresuid(0)`` inside, BASE outside).
- The image, tarball caches and read-only directory layers are lower layers of an overlayfs that
  PID 1 mounts inside the namespace; the parent hands them over as idmapped mounts
  (``open_tree(OPEN_TREE_CLONE)`` + ``mount_setattr(MOUNT_ATTR_IDMAP)``), so the host's 0 is
  container root there and nothing shared is chowned or written. A file-system image is mounted
  by the parent (``fsmount``: ext4 cannot be mounted inside a user namespace) and idmapped the same
  way. Only the container's own writable layers (upper and work directories) and mount-point
  skeletons are chowned into the range (and shifted when a kept layer meets another range).
- Binds of host paths are handed over as detached mounts too (PID 1, unprivileged on the host,
  might not reach them), not idmapped: as in nspawn and podman, host files keep their owners and
  container root cannot write files owned by host users outside its range.
- ``mknod`` is not allowed in a user namespace: /dev's nodes are bind mounts of the host's.

Why this way: idmapped lower layers leave the image and the shared caches untouched (no chowned
copy per range, as older runtimes made); an overlay mounted inside the namespace is nodev by the
kernel's rule for such mounts, so a device node shipped in an image is useless to container
root; and PID 1 never needs a privilege on the host once it is container root.

Measured on this 2-CPU VM (cgroup v1, other work running), Container.start() of ``/bin/true``
until it runs, interleaved runs: ``--network none`` median 17.2 ms without, 17.1 ms with (60
each; fastest 11.2 vs 12.9 ms), veth 28.0 vs 29.3 ms (30 each); ``ctrctl run --rm --network none
-- /bin/true`` 184.9 vs 182.3 ms (20 each, Python's start-up dominates). Instrumented, the
parent's share is the lease 0.6 ms and the chown of a fresh layer 0.1 ms before the fork, the
maps 0.3 ms and the idmapped sources 0.4 ms during it (overlapped with the fork of PID 1 and its
network namespace); teardown gains the lease's release, 0.4 ms.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from supervisor.model.idmap import IdMap, Line, id_map
from supervisor.runtime import syscalls
from supervisor.runtime.locking import exclusive
from supervisor.runtime.paths import Dirs

SIZE = 65536
FIRST_BASE = 0x00080000  # systemd-nspawn's range for --private-users=pick
LAST_BASE = 0x6FFF0000
_SLOTS = (LAST_BASE - FIRST_BASE) // SIZE + 1
_SUBID_FILES = ("/etc/subuid", "/etc/subgid")


class RangeExhausted(RuntimeError):
    """Every range is taken."""


# -- leases -------------------------------------------------------------------------------------


def _leases(state_dir: Path) -> Path:
    return state_dir / "userns" / "ranges"


def _locked(state_dir: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive(state_dir / "userns" / "lock")


def allocate(dirs: Dirs, name: str, preferred: int | None = None) -> IdMap:
    """Lease a free range for container ``name``: ``preferred`` (the range its kept writable layer
    is owned by) if free, else the first free one from the slot its name hashes to."""
    with _locked(dirs.state):
        taken = _taken(dirs)
        for base in _candidates(name, preferred):
            if base not in taken and not _used_on_host(base):
                _record(dirs.state, base, name)
                return IdMap.one_range(base, SIZE)
    raise RangeExhausted(f"no free user namespace range for {name} "
                         f"({len(taken)} leased in {_leases(dirs.state)})")


def release(state_dir: Path, leased: IdMap, name: str) -> None:
    """Give back the lease of ``name`` on the range ``leased`` (not one another container took
    since)."""
    path = _leases(state_dir) / str(leased.root[0])
    with _locked(state_dir), contextlib.suppress(FileNotFoundError):
        if path.read_text() == name:
            path.unlink()


def _record(state_dir: Path, base: int, name: str) -> None:
    directory = _leases(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / str(base)).write_text(name)


def _taken(dirs: Dirs) -> set[int]:
    """Leased bases; a lease of a container whose state directory is gone is removed."""
    try:
        entries = list(_leases(dirs.state).iterdir())
    except FileNotFoundError:
        return set()
    taken = set()
    for entry in entries:
        with contextlib.suppress(FileNotFoundError, ValueError):
            if dirs.container_state(entry.read_text()).is_dir():
                taken.add(int(entry.name))
            else:
                entry.unlink()
    return taken


def _candidates(name: str, preferred: int | None) -> Iterator[int]:
    if preferred is not None and valid_base(preferred):
        yield preferred
    start = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % _SLOTS
    for slot in range(_SLOTS):
        yield FIRST_BASE + (start + slot) % _SLOTS * SIZE


def valid_base(base: int) -> bool:
    return FIRST_BASE <= base <= LAST_BASE and base % SIZE == 0


def _used_on_host(base: int) -> bool:
    """Whether ids of the range belong to someone on the host: a user or group with the base id,
    or a subordinate range (/etc/subuid, /etc/subgid) overlapping it."""
    try:
        pwd.getpwuid(base)
        return True
    except KeyError:
        pass
    try:
        grp.getgrgid(base)
        return True
    except KeyError:
        pass
    return any(start < base + SIZE and base < start + count
               for start, count in _subordinate_ranges(_SUBID_FILES))


def _subordinate_ranges(paths: Iterable[str]) -> Iterator[tuple[int, int]]:
    for path in paths:
        with contextlib.suppress(OSError), open(path) as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                    yield int(fields[1]), int(fields[2])


# -- host side ----------------------------------------------------------------------------------


def write_maps(pid: int, ids: IdMap) -> None:
    """Map ``pid``'s new user namespace, each map in the one write the kernel takes. Written by
    a privileged process, gid_map leaves setgroups(2) allowed inside, so container root can set
    supplementary groups."""
    for kind in ("uid", "gid"):
        fd = os.open(f"/proc/{pid}/{kind}_map", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, ids.text(kind).encode())
        finally:
            os.close(fd)


@contextlib.contextmanager
def namespace_with(ids: IdMap) -> Iterator[int]:
    """A descriptor of a new user namespace mapped by ``ids``, as an idmapped mount takes its
    maps: made by a child that waits while the maps are written and the namespace opened."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            os.read(done_r, 1)  # until the parent closes its end
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise OSError(f"a user namespace for the maps {ids} could not be made")
        write_maps(pid, ids)
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
    try:
        yield fd
    finally:
        os.close(fd)


def of_namespace(path: str) -> IdMap:
    """The maps of the existing user namespace at ``path`` (a bundle's, joined by path), read by
    a child that entered it: the way that also works for a namespace pinned by a bind mount,
    with no process of it at hand."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            syscalls.setns(fd, syscalls.CLONE_NEWUSER)
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/self/{name}", "rb") as f:
                    os.write(write, f.read() + b"|")
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        maps = f.read().decode().split("|")
    os.waitpid(pid, 0)
    if len(maps) != 3:
        raise ValueError(f"user namespace {path}: cannot be entered to read its id maps")
    try:
        return id_map(*(_lines(text) for text in maps[:2]))
    except ValueError as exc:  # Invalid, or a line that is no map line
        raise ValueError(f"user namespace {path}: {exc}") from None


def _lines(text: str) -> list[Line]:
    """A map as /proc shows it (``%10u %10u %10u`` a line)."""
    lines = []
    for line in text.splitlines():
        inside, outside, count = map(int, line.split())
        lines.append((inside, outside, count))
    return lines


def take_ownership(paths: Iterable[Path], ids: IdMap) -> None:
    """Make the container's own ``paths`` (its writable layers, skeletons) owned by its root. A
    tree owned by another range (or by the host's ids, from a run without a user namespace) is
    shifted whole: its root's owner is taken as that range's base."""
    for path in paths:
        st = os.lstat(path)
        if (st.st_uid, st.st_gid) != ids.root:
            _shift(path, st.st_uid, st.st_gid, ids)


def _shift(path: Path, old_uid: int, old_gid: int, ids: IdMap) -> None:
    def moved(value: int, old: int, host: Callable[[int], int | None]) -> int:
        new = host(value - old) if value >= old else None
        return value if new is None else new

    def chown(entry: str) -> None:
        st = os.lstat(entry)
        os.lchown(entry, moved(st.st_uid, old_uid, ids.host_uid),
                  moved(st.st_gid, old_gid, ids.host_gid))
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            os.chmod(entry, stat.S_IMODE(st.st_mode))  # chown cleared them

    for directory, dirnames, filenames in os.walk(path):
        chown(directory)  # each subdirectory in its own turn
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(directory, d))]:
            chown(os.path.join(directory, name))
