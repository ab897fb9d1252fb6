"""Unpack one image layer (tar, tar+gzip, tar+zstd) into its own directory, while it streams.

The tar is read in one pass straight from the download (or an archive member), so fetching,
verifying and unpacking happen together and no compressed copy is kept. Each layer becomes an
overlayfs layer of its own, so OCI whiteouts are translated as the kernel wants them:
``.wh.NAME`` becomes a 0:0 character device ``NAME``, ``.wh..wh..opq`` marks its directory
opaque with ``trusted.overlay.opaque=y`` (and ``user.overlay.opaque=y``, which an overlay mounted
with ``userxattr`` in a user namespace reads instead). An image cannot set ``*.overlay.*``
xattrs of its own (they could redirect lookups out of the layer).

File modes including setuid/setgid, numeric owners, xattrs, symlinks, hard links (to files of
the same layer) and timestamps are kept; fifos are made; device nodes are skipped (each
container gets its own /dev). The destination starts empty and only this code writes into it,
so its record of what it made is exact (and spares an ``lstat`` per path component): a member
that is absolute, holds ``..``, or whose path goes through a symlink is refused with its name,
and nothing ever follows a link the image made (files are opened ``O_NOFOLLOW``, hard-link
targets must be files of this layer).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, cast

from supervisor.images.digest import Readable, VerifyingReader

TAR = "application/vnd.oci.image.layer.v1.tar"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_FORBIDDEN_XATTRS = ("trusted.overlay.", "user.overlay.")
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_BUFSIZE = 1 << 20
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around deflate


class LayerError(ValueError):
    """A layer that cannot be unpacked: corrupt, unsupported, or with an unsafe member."""


@dataclass(frozen=True)
class Unpacked:
    diff_id: str  # sha256 of the uncompressed tar, as the image config's rootfs.diff_ids has it
    size: int  # bytes of file content


class _Prefixed:
    """``head`` then the rest of ``source``: the magic bytes we peeked at, put back."""

    def __init__(self, head: bytes, source: Readable) -> None:
        self._head = head
        self._source = source

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._source.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._source.read(size)


def media_type(head: bytes) -> str:
    """The OCI layer media type of a layer starting with ``head`` (its first 4 bytes)."""
    if head.startswith(_GZIP):
        return f"{TAR}+gzip"
    if head.startswith(_ZSTD):
        return f"{TAR}+zstd"
    return TAR


class _Gunzip:
    """gzip members one after the other, decompressed as read: zlib itself, which checks each
    member's CRC and length, without GzipFile's Python layers (a quarter of an unpack's time
    for a layer of small files went there)."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._inflate = zlib.decompressobj(_GZIP_WBITS)
        self._out = b""

    def read(self, size: int = -1, /) -> bytes:
        while not self._out:
            if self._inflate.eof:
                rest = self._inflate.unused_data or self._source.read(_BUFSIZE)
                if not rest:
                    return b""
                self._inflate = zlib.decompressobj(_GZIP_WBITS)  # the next member
            else:
                rest = self._inflate.unconsumed_tail or self._source.read(_BUFSIZE)
                if not rest:
                    raise EOFError("compressed data ended before the end of the gzip stream")
            self._out = self._inflate.decompress(rest, _BUFSIZE)
        if size < 0 or size >= len(self._out):
            data, self._out = self._out, b""
        else:
            data, self._out = self._out[:size], self._out[size:]
        return data


class _Forward:
    """A stream as tarfile's random-access mode reads it, which seeks forward only: a forward
    seek skips, a read copies just what it returns. Its stream mode (``r|``) instead copies
    its whole buffer again at every read, a header's included (the largest cost of an unpack
    of many small files)."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._buffer = b""
        self._at = 0  # in _buffer
        self._offset = 0  # of the stream

    def tell(self) -> int:
        return self._offset

    def read(self, size: int = -1, /) -> bytes:
        wanted = sys.maxsize if size < 0 else size
        available = len(self._buffer) - self._at
        if available < wanted:
            chunks = [self._buffer[self._at:]]
            while available < wanted and (chunk := self._source.read(_BUFSIZE)):
                chunks.append(chunk)
                available += len(chunk)
            self._buffer, self._at = b"".join(chunks), 0
        data = self._buffer[self._at:self._at + wanted]
        self._at += len(data)
        self._offset += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self._offset:
            raise tarfile.ReadError("a layer is read in one pass; tar seeked back")
        while self._offset < offset:
            if not self.read(min(offset - self._offset, _BUFSIZE)):
                break
        return self._offset


def _zstandard() -> ModuleType:
    """The zstd library, imported once a layer needs it: not at every start, which reads no
    layer (or the handler's tuple, which is made only when an error is being handled)."""
    import zstandard

    return zstandard


def decompressed(source: Readable) -> Readable:
    """The tar stream inside ``source``, whatever its compression (told by its magic)."""
    head = b""
    while len(head) < 4:
        data = source.read(4 - len(head))
        if not data:
            break
        head += data
    stream = _Prefixed(head, source)
    if head.startswith(_GZIP):
        return _Gunzip(stream)
    if head.startswith(_ZSTD):
        reader = _zstandard().ZstdDecompressor().stream_reader(
            cast(BinaryIO, stream), read_size=_BUFSIZE, read_across_frames=True, closefd=False)
        return cast(Readable, reader)
    return stream


def unpack(source: Readable, dest: Path, what: str) -> Unpacked:
    """Unpack the (possibly compressed) layer ``source`` into the empty directory ``dest``.

    ``source`` is read to its end, so a verifying reader under it sees every byte. On error
    the caller removes ``dest`` (it is a temporary directory of the store).
    """
    tar_stream = VerifyingReader(decompressed(source), what=what)
    forward = _Forward(tar_stream)
    writer = _Writer(dest, what, forward)
    try:
        with tarfile.open(fileobj=cast(BinaryIO, forward), mode="r:") as tar:
            for member in tar:
                writer.add(tar, member)
        tar_stream.drain()
        source_rest = source.read(1)
        while source_rest:
            source_rest = source.read(_BUFSIZE)
    except (tarfile.TarError, EOFError, zlib.error, _zstandard().ZstdError) as e:
        raise LayerError(f"{what}: not a valid layer: {e}") from e
    writer.finish()
    return Unpacked(tar_stream.actual, writer.size)


class _Writer:
    def __init__(self, dest: Path, what: str, stream: _Forward) -> None:
        self.root = str(dest)
        self.what = what
        self.stream = stream  # the tar, where a member's data is read from
        self.size = 0
        # Every path of the layer: "dir", "link", "file" (regular: a hard link's target may be
        # one) or "other"
        self._made: dict[str, str] = {}
        self._dirs: list[tuple[str, tarfile.TarInfo]] = []  # times set last

    def _refuse(self, member: tarfile.TarInfo, why: str) -> LayerError:
        return LayerError(f"{self.what}: refusing member {member.name!r}: {why}")

    def _clean(self, member: tarfile.TarInfo, path: str) -> str:
        if "\0" in path:
            raise self._refuse(member, "a NUL character in a path")
        if path.startswith("/"):
            raise self._refuse(member, f"absolute path {path!r}")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self._refuse(member, f"'..' in {path!r}")
        return "/".join(parts)

    def _parent(self, member: tarfile.TarInfo, name: str) -> str:
        """The host path of ``name``'s directory, made if missing, never through a symlink."""
        current = self.root
        for part in name.split("/")[:-1]:
            current = os.path.join(current, part)
            kind = self._made.get(current)
            if kind is None:
                os.mkdir(current, 0o755)
                self._made[current] = "dir"
            elif kind == "link":
                raise self._refuse(member, "path goes through a symlink")
            elif kind != "dir":
                raise self._refuse(member, "path goes through a file")
        return current

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = self._clean(member, member.name)
        if not name:
            if member.isdir():
                self._metadata(self.root, member)
                self._dirs.append((self.root, member))
            return
        parent = self._parent(member, name)
        base = name.rsplit("/", 1)[-1]
        if base.startswith(WHITEOUT):
            self._whiteout(member, parent, base)
            return
        path = os.path.join(parent, base)
        if member.ischr() or member.isblk():
            return
        self._clear(path, member.isdir())
        if member.isdir():
            if self._made.get(path) != "dir":
                os.mkdir(path, 0o700)
                self._made[path] = "dir"
            self._metadata(path, member)
            self._dirs.append((path, member))
            return
        self._made[path] = ("file" if member.isreg() or member.islnk() else
                            "link" if member.issym() else "other")
        if member.isreg():
            self._file(tar, member, path)
        elif member.issym():
            if not member.linkname or "\0" in member.linkname:
                raise self._refuse(member, f"symlink target {member.linkname!r}")
            os.symlink(member.linkname, path)
            self._metadata(path, member)
        elif member.islnk():
            target = os.path.join(self.root, self._clean(member, member.linkname))
            if self._made.get(target) != "file" or target == path:
                raise self._refuse(member, f"hard link to {member.linkname!r}, which is not a "
                                   "file of this layer")
            os.link(target, path, follow_symlinks=False)
        elif member.isfifo():
            os.mkfifo(path, 0o600)
            self._metadata(path, member)
        else:
            raise self._refuse(member, f"unsupported tar entry type {member.type!r}")

    def _whiteout(self, member: tarfile.TarInfo, parent: str, base: str) -> None:
        if base == OPAQUE:
            for name in OPAQUE_XATTRS:
                os.setxattr(parent, name, b"y", follow_symlinks=False)
            return
        hidden = base[len(WHITEOUT):]
        if not hidden or hidden.startswith(WHITEOUT) or hidden in (".", ".."):
            return  # aufs bookkeeping (.wh..wh.plnk and the like): nothing to hide
        path = os.path.join(parent, hidden)
        if path in self._made:
            return  # a whiteout hides lower layers only, never its own layer's files
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        self._made[path] = "other"

    def _clear(self, path: str, keep_directory: bool) -> None:
        """A later member replaces an earlier one of the same name, as tar does."""
        kind = self._made.get(path)
        if kind == "dir" and not keep_directory:
            shutil.rmtree(path)
            self._made = {made: k for made, k in self._made.items()
                          if made != path and not made.startswith(f"{path}/")}
            # nor their times, set at the end: what now has that name may be a symlink
            self._dirs = [(made, m) for made, m in self._dirs
                          if made != path and not made.startswith(f"{path}/")]
        elif kind is not None and kind != "dir":
            os.unlink(path)
            del self._made[path]

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            written = self._content(tar, member, fd)
            if written != member.size:
                raise self._refuse(member, "truncated file content")
            self.size += member.size
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid
            self._xattrs(fd, member)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)

    def _content(self, tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int) -> int:
        """The member's data into ``fd``, straight from the stream (a sparse file through
        tarfile, which knows its map); the bytes written."""
        if member.issparse():
            source: Readable = cast(Readable, tar.extractfile(member))
            remaining = -1
        else:
            self.stream.seek(member.offset_data)
            source, remaining = self.stream, member.size
        written = 0
        while remaining:
            data = source.read(_BUFSIZE if remaining < 0 else min(remaining, _BUFSIZE))
            if not data:
                break
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            written += len(data)
            remaining -= len(data) if remaining > 0 else 0
        return written

    def _metadata(self, path: str, member: tarfile.TarInfo) -> None:
        os.chown(path, member.uid, member.gid, follow_symlinks=False)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)
        self._xattrs(path, member)
        if not member.isdir():
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _xattrs(self, target: str | int, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith(_FORBIDDEN_XATTRS):
                raise self._refuse(member, f"sets the overlay's own xattr {name!r}")
            raw = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, raw)
                else:
                    os.setxattr(target, name, raw, follow_symlinks=False)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def finish(self) -> None:
        for path, member in reversed(self._dirs):
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

