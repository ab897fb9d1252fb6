"""Safe unpacking of untrusted tar archives (images and mount sources), with a shared cache.

Checks are lexical, against what this unpack has itself written so far (the destination starts
empty), rather than against ``realpath`` of the disk as tarfile's "data" filter does: that filter
refuses the absolute symlinks every root file system has (``/lib64/ld-linux-x86-64.so.2``), drops
ownership and directory modes (``/tmp`` 1777), and has had bypasses through deep symlink chains.

The rules: no member named absolute or with a ``..`` component; nothing is written through or
over a symlink; a relative symlink must stay inside the tree, an absolute one is kept (it points
into the container's root once the image is in use, so host-side code must never follow links
inside an image); a hard link must name a regular file unpacked before it; device nodes and
fifos are not created (the runtime gives each container its own /dev); setuid/setgid bits are
dropped from files. As root, numeric ownership is kept, since an image needs root-owned files.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path

from supervisor.runtime.locking import exclusive

log = logging.getLogger(__name__)

_DIR, _FILE, _SYMLINK = "directory", "file", "symlink"


class ArchiveError(ValueError):
    """An archive that cannot be read, or holds a member that would be unsafe to unpack."""


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` (.tar, .tar.gz, .tar.xz, .tar.bz2) into ``dest`` and return ``dest``.

    ``dest`` must be missing (it is created, 0755) or an empty directory. If all entries lie under
    one top-level directory (and the archive does not name its own root "./"), that directory's
    contents become the root. On error nothing is left in ``dest``.
    """
    created = not dest.exists()
    if created:
        dest.mkdir(mode=0o755)
        dest.chmod(0o755)
    elif any(dest.iterdir()):
        raise FileExistsError(f"{dest}: not empty, refusing to unpack {archive} into it")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _vetted(archive, tar.getmembers())
            # Every member was checked and rewritten above; tarfile's own filters would undo that.
            tar.extractall(dest, members=members, numeric_owner=True, filter="fully_trusted")
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as e:
        _clear(dest, created)
        raise ArchiveError(f"{archive}: {e}") from e
    except BaseException:
        _clear(dest, created)
        raise
    return dest


def unpack_cached(archive: Path, cache_dir: Path) -> Path:
    """Return a directory holding ``archive`` unpacked, unpacking it only once.

    Keyed by the archive's real path, size and mtime, so a changed archive is unpacked again. The
    tree is built in a temporary directory and renamed into place under a per-key flock, so
    concurrent callers (threads or processes) wait for one unpack and never see a partial tree.
    ``cache_dir`` is created 0700: an image's files are for containers, not for host users.
    """
    st = archive.stat()
    key_source = b"\0".join(
        [os.fsencode(os.path.realpath(archive)), b"%d" % st.st_size, b"%d" % st.st_mtime_ns]
    )
    key = hashlib.sha256(key_source).hexdigest()[:32]
    target = cache_dir / key
    if target.is_dir():
        return target
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with exclusive(cache_dir / f".{key}.lock"):
        if target.is_dir():
            return target
        for stale in cache_dir.glob(f".{key}.tmp*"):  # left by a killed unpacker
            shutil.rmtree(stale)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp", dir=cache_dir))
        try:
            unpack(archive, tmp)
            tmp.chmod(0o755)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def _clear(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink()


def _vetted(archive: Path, members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    """Check every member in archive order and rewrite names, links and modes in place."""
    prefix = _common_top(archive, members)
    seen: dict[str, str] = {}  # path -> what this unpack left there last
    kept = []
    specials = []
    for member in members:
        name = _strip(_clean(archive, member, member.name), prefix)
        if name is None:
            continue  # the archive's root or the stripped top-level directory
        if member.ischr() or member.isblk() or member.isfifo():
            specials.append(member.name)
            continue
        _check_path(archive, member, name, seen)
        if member.issym():
            _check_symlink(archive, member, name)
        elif member.islnk():
            target = _strip(_clean(archive, member, member.linkname), prefix)
            if target is None or seen.get(target) != _FILE:
                raise _unsafe(archive, member, "hard link to something not unpacked before it")
            member.linkname = target
        if not member.isdir():
            member.mode &= ~(stat.S_ISUID | stat.S_ISGID)
        member.name = name
        parts = name.split("/")
        for i in range(1, len(parts)):  # made by tarfile for it, if the archive has not
            seen.setdefault("/".join(parts[:i]), _DIR)
        seen[name] = _kind(member)
        kept.append(member)
    if specials:
        log.warning("%s: not creating %d device nodes and fifos: %s", archive, len(specials),
                    " ".join(specials))
    return kept


def _unsafe(archive: Path, member: tarfile.TarInfo, why: str) -> ArchiveError:
    return ArchiveError(f"{archive}: refusing member {member.name!r}: {why}")


def _clean(archive: Path, member: tarfile.TarInfo, path: str) -> str:
    """``path`` without ``.`` and empty components; refuses absolute paths and ``..``."""
    if "\0" in path:
        raise _unsafe(archive, member, "a NUL character in a path")
    if path.startswith("/"):
        raise _unsafe(archive, member, f"absolute path {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _unsafe(archive, member, f"'..' in {path!r}")
    return "/".join(parts)


def _common_top(archive: Path, members: list[tarfile.TarInfo]) -> str:
    """The single top-level directory all members lie under, or "" if there is none.

    An archive that names its own root (``tar -C rootfs -cf x.tar .`` gives ``./``, ``./bin``)
    is a tree of that root, not a wrapper directory, and is never stripped.
    """
    tops = set()
    nested = False
    top_is_dir = True
    for member in members:
        name = _clean(archive, member, member.name)
        if not name:
            return ""
        top, _, rest = name.partition("/")
        tops.add(top)
        nested = nested or bool(rest)
        if not rest and not member.isdir():
            top_is_dir = False
    if len(tops) == 1 and nested and top_is_dir:
        return tops.pop()
    return ""


def _strip(name: str, prefix: str) -> str | None:
    if not prefix:
        return name or None
    rest = name.partition("/")[2] if name.startswith(prefix + "/") else ""
    return rest or None


def _kind(member: tarfile.TarInfo) -> str:
    return _DIR if member.isdir() else _SYMLINK if member.issym() else _FILE


def _check_path(archive: Path, member: tarfile.TarInfo, name: str, seen: dict[str, str]) -> None:
    """Nothing through a symlink or a file, and nothing over an earlier member of another kind
    but a symlink over a symlink (which tarfile replaces): a directory cannot become a file, nor
    a file a directory, and tarfile would fail half-way through either with an OSError."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        above = seen.get("/".join(parts[:i]))
        if above in (_SYMLINK, _FILE):
            raise _unsafe(archive, member, f"path goes through a {above}")
    before, kind = seen.get(name), _kind(member)
    if before == _SYMLINK and kind != _SYMLINK:
        raise _unsafe(archive, member, "would write through a symlink")
    if before is not None and _DIR in (before, kind) and before != kind:
        raise _unsafe(archive, member, f"would replace a {before} with a {kind}")


def _check_symlink(archive: Path, member: tarfile.TarInfo, name: str) -> None:
    target = member.linkname
    if not target or "\0" in target:
        raise _unsafe(archive, member, f"symlink target {target!r}")
    if target.startswith("/"):
        return
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if resolved == ".." or resolved.startswith("../"):
        raise _unsafe(archive, member, f"symlink to {target!r} points outside the archive")
