"""Resolve a container's ``image`` setting to something the mount code can use.

An image is either a directory (the overlay's read-only lower layer) or a file-system image file
that the mount code attaches to a loop device and mounts read-only. Tarballs are unpacked once
into ``DATA_DIR/cache`` and used as directories. What a file is comes from its contents, not its
name, so ``NAME.img`` holding a tarball still works.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from supervisor.model.defaults import IMAGE_SUFFIXES as SUFFIXES
from supervisor.runtime import loop, tarball

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ImageError(ValueError):
    """An image that cannot be used (unrecognised contents, unsafe or corrupt tarball)."""


class ImageNotFound(ImageError):
    """No image under the given name or path."""


@dataclass(frozen=True)
class Image:
    """A resolved image: ``path`` is a directory, or a file to loop-mount as ``fstype``."""

    ref: str
    path: Path
    fstype: str | None = None

    @property
    def is_directory(self) -> bool:
        return self.fstype is None


def resolve(ref: str, data_dir: Path) -> Image:
    """Resolve ``ref``: a name under ``data_dir/images`` or (if it contains "/") a path."""
    if "/" in ref:
        path = Path(ref).absolute()
        if not path.exists():
            raise ImageNotFound(f"image {ref!r}: {path} does not exist")
        return _from_path(ref, path, data_dir)
    if not _NAME.fullmatch(ref):
        raise ImageError(f"image {ref!r}: not a valid image name (letters, digits, '_.-')")
    images = data_dir / "images"
    for suffix in SUFFIXES:
        path = images / f"{ref}{suffix}"
        if path.exists():
            return _from_path(ref, path, data_dir)
    looked_for = ", ".join(f"{ref}{suffix}" for suffix in SUFFIXES)
    raise ImageNotFound(f"image {ref!r} not found: looked for {looked_for} in {images}")


def _from_path(ref: str, path: Path, data_dir: Path) -> Image:
    if path.is_dir():
        return Image(ref, path)
    try:
        return Image(ref, path, loop.detect_fstype(path))
    except loop.UnknownFilesystem:
        pass
    except OSError as e:
        raise ImageError(f"image {ref!r}: cannot read {path}: {e}") from e
    if not tarfile.is_tarfile(path):
        raise ImageError(
            f"image {ref!r}: {path} is not a directory, a tarball or a file-system image "
            f"({', '.join(loop.KNOWN_FSTYPES)})"
        )
    try:
        return Image(ref, tarball.unpack_cached(path, data_dir / "cache"))
    except tarball.ArchiveError as e:
        raise ImageError(f"image {ref!r}: {e}") from e
