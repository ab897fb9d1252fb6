"""Reading and writing cgroup interface files, shared by every driver.

Readers take a str path as well as a Path: the statistics, read for every container at every
scrape, join their file names with f-strings, as Path's ``/`` costs about 1.3 us, a seventh of
the read itself.

Writes go through :func:`write` so a value the kernel refuses is reported with the file and the
value: that is what a user needs to fix a definition. :func:`make_dir` and :func:`remove_dir` are
the only places where cgroupfs behaves unlike a plain directory (the kernel fills a new directory
with its interface files and lets ``rmdir`` remove them), so a fake tree in tests replaces just
those two.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path


class CgroupWriteError(OSError):
    """The kernel refused a value written to a cgroup file (errno kept from the failed write)."""

    def __init__(self, path: Path, value: str, cause: OSError) -> None:
        super().__init__(cause.errno, f"cannot write {value!r} to {path}: {cause.strerror}")
        self.path = path
        self.value = value


StrPath = str | os.PathLike[str]


_CHUNK = 65536


def read_text(path: StrPath) -> str:
    """A cgroup file's whole text. Plain os.open/os.read: a third of the cost of
    Path.read_text's buffered, decoding file object, and metrics read ~16 files per container.
    A read that returns less than asked for has reached the end (the kernel's seq_file fills
    the buffer while it has more), so a short file takes one read, not a second for the end:
    ~2 us of ~17 per file on the development VM."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, _CHUNK)
        if len(data) == _CHUNK:
            chunks = [data]
            while chunk := os.read(fd, _CHUNK):
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data.decode()


def read(path: StrPath) -> str:
    return read_text(path).strip()


def read_int(path: StrPath) -> int:
    return int(read(path))


def read_max(path: StrPath) -> int | None:
    """An integer from a file such as ``pids.max`` or ``memory.max``; None for ``max``."""
    text = read(path)
    return None if text == "max" else int(text)


def read_keyed(path: StrPath) -> dict[str, int]:
    """A flat-keyed file such as ``cpu.stat`` or ``cgroup.events``: one ``key value`` a line."""
    entries: dict[str, int] = {}
    for line in read_text(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            entries[key] = int(value)
        except ValueError:  # not a counter (a nested-keyed line, a header)
            continue
    return entries


def read_fields(path: StrPath, keys: Iterable[str]) -> dict[str, int]:
    """Only ``keys`` of a flat-keyed file (those it has): ``memory.stat`` has some 40 lines and
    a scrape needs three, which a search finds in a fifth of the time splitting every line
    takes."""
    text = "\n" + read_text(path)
    found = {}
    for key in keys:
        start = text.find(f"\n{key} ")
        if start >= 0:
            end = text.find("\n", start + 1)
            found[key] = int(text[start + len(key) + 2:end if end >= 0 else None])
    return found


def write(path: Path, value: str | int) -> None:
    """Write one value; a missing file (controller not available) fails too, never creates one."""
    text = str(value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as error:
        raise CgroupWriteError(path, text, error) from error


def make_dir(path: Path) -> bool:
    """Create one cgroup directory; False if it already existed."""
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True


def make_child(path: Path, prepare_parent: Callable[[], object]) -> bool:
    """Create a container's cgroup under a shared parent that ``prepare_parent`` makes if it is
    missing; False if it existed. Under the hierarchy's lock, as :func:`remove_if_unused`
    removes that parent under it."""
    with hierarchy_locked(path):
        prepare_parent()
        return make_dir(path)


@contextlib.contextmanager
def hierarchy_locked(path: Path) -> Iterator[None]:
    """Hold the lock of the hierarchy ``path`` is in (an flock on its root directory) while a
    shared parent cgroup is made and a child put in it, or removed once unused.

    Without it the destroy of a parent's last child, in another process (ctrd, its warm pool's
    intermediates, ``ctrctl --local``, ctr-runtime), removed the parent between the two: with
    two processes each making and removing a container in a loop, 4 % of the creates failed,
    and one that failed last left the parent behind. The kernel drops the lock of a holder that
    dies; it is dropped by hand before the close, in case a fork meanwhile shares it.
    """
    fd = os.open(_hierarchy_root(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _hierarchy_root(path: Path) -> str:
    """The topmost existing cgroup directory at or above ``path`` (which may not exist yet):
    the one whose parent is no cgroup."""
    root = str(path)
    while not os.path.exists(f"{root}/cgroup.procs") or os.path.exists(
            f"{os.path.dirname(root)}/cgroup.procs"):
        if os.path.dirname(root) == root:
            raise FileNotFoundError(f"{path} is in no cgroup hierarchy")
        root = os.path.dirname(root)
    return root


def remove_dir(path: Path) -> None:
    """Remove one empty cgroup directory (its interface files go with it)."""
    os.rmdir(path)


def procs(path: Path) -> list[int]:
    """Every process in the cgroup at ``path`` and in its child cgroups; empty if it is gone."""
    pids: set[int] = set()
    for directory, _, _ in os.walk(path):
        try:
            pids.update(int(pid) for pid in (Path(directory) / "cgroup.procs").read_text().split())
        except FileNotFoundError:  # removed while we walked
            continue
    return sorted(pids)


def signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # exited since it was listed
            continue


def wait_until(done: Callable[[], bool], deadline: float, what: str) -> None:
    """Poll ``done``, more slowly each time, until it is true or the monotonic ``deadline``."""
    interval = 0.001
    while not done():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, 0.05)


def remove_tree(path: Path, deadline: float) -> None:
    """Remove a cgroup directory and its child cgroups, bottom up; nothing to do if it is gone.

    ``rmdir`` can fail with EBUSY for a moment after the last process left, so it is retried.
    """
    for directory, _, _ in os.walk(path, topdown=False):
        wait_until(partial(_try_remove, Path(directory)), deadline, f"{directory} to be removable")


def remove_if_unused(path: Path) -> None:
    """Remove a shared parent cgroup once its last child is gone, so an idle host keeps nothing.

    A sibling still there (EBUSY), or a concurrent destroy that got there first, is no error.
    """
    with hierarchy_locked(path):
        try:
            remove_dir(path)
        except OSError as error:
            if error.errno not in (errno.EBUSY, errno.ENOTEMPTY, errno.ENOENT):
                raise


def _try_remove(path: Path) -> bool:
    try:
        remove_dir(path)
    except FileNotFoundError:
        return True
    except OSError as error:
        if error.errno == errno.EBUSY:
            return False
        raise
    return True

