"""Resolve a container's ``image`` setting to something the mount code can use.

Which kind an image is comes from ``supervisor.images.locate`` (a local image wins over a
registry). A path or a name under ``DATA_DIR/images`` is a directory (the overlay's read-only
lower layer) or a file-system image file that the mount code attaches to a loop device and
mounts read-only; tarballs are unpacked once into ``DATA_DIR/cache`` and used as directories.
What a file is comes from its contents, not its name, so ``NAME.img`` holding a tarball still
works. An OCI image of the store is its layer directories, shared by every container using them,
and its config; the container holds it in the store while it exists. Pulling is not done here
(see ``supervisor.images.locate.to_pull``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.images import locate
from supervisor.runtime import loop

if TYPE_CHECKING:
    from supervisor.images.imageconfig import ImageConfig
    from supervisor.images.store import StoredImage


class ImageError(ValueError):
    """An image that cannot be used (unrecognised contents, unsafe or corrupt tarball)."""


class ImageNotFound(ImageError):
    """No image under the given name or path."""


@dataclass(frozen=True)
class Image:
    """A resolved image: ``path`` is a directory, or a file to loop-mount as ``fstype``; for an
    image of the store, the store's root, which its layers' short links are relative to."""

    ref: str
    path: Path
    fstype: str | None = None
    stored: StoredImage | None = None

    @property
    def is_directory(self) -> bool:
        return self.fstype is None and self.stored is None

    @property
    def config(self) -> ImageConfig | None:
        return None if self.stored is None else self.stored.config

    @property
    def layers(self) -> tuple[str, ...]:
        """The lower layers, top first: one directory, or the store's links of an OCI image
        (relative to ``path``)."""
        if self.stored is None:
            return (str(self.path),)
        return tuple(layer.link for layer in reversed(self.stored.layers))


def resolve(ref: str, data_dir: Path, holder: str | None = None) -> Image:
    """Resolve ``ref``: a name under ``data_dir/images``, a path, or an image of the store;
    ``holder``, a container's name, holds an image of the store for that container (released
    with ``Store.release``). A relative path (from ``ctrctl run``) is taken from here."""
    try:
        located = locate.locate(ref, data_dir)
    except locate.ImageNotFound as e:
        raise ImageNotFound(str(e)) from None
    except locate.InvalidImage as e:
        raise ImageError(str(e)) from None
    if located.kind in ("path", "named"):
        assert located.path is not None
        path = located.path.absolute()
        if not path.exists():
            raise ImageNotFound(f"image {ref!r}: {path} does not exist")
        return _from_path(ref, path, data_dir)
    if located.kind == "registry":
        raise ImageNotFound(f"{locate.not_found(ref, data_dir)}; pull it first (ctrctl pull "
                            f"{ref}), or start it with a pull policy that pulls")
    from supervisor.images.digest import DigestError
    from supervisor.images.imageconfig import ConfigError
    from supervisor.images.store import ImageUnknownError, Store

    store = Store(data_dir)
    try:
        stored = store.acquire(holder, ref) if holder else store.resolve(ref)
    except (ImageUnknownError, DigestError, ConfigError) as e:
        raise ImageNotFound(f"image {ref!r}: {e}") from None
    return Image(ref, store.root, stored=stored)


def _from_path(ref: str, path: Path, data_dir: Path) -> Image:
    if path.is_dir():
        return Image(ref, path)
    try:
        return Image(ref, path, loop.detect_fstype(path))
    except loop.UnknownFilesystem:
        pass
    except OSError as e:
        raise ImageError(f"image {ref!r}: cannot read {path}: {e}") from e
    import tarfile  # for a tarball only, as the unpacking's module

    from supervisor.runtime import tarball

    if not tarfile.is_tarfile(path):
        raise ImageError(
            f"image {ref!r}: {path} is not a directory, a tarball or a file-system image "
            f"({', '.join(loop.KNOWN_FSTYPES)})"
        )
    try:
        return Image(ref, tarball.unpack_cached(path, data_dir / "cache"))
    except tarball.ArchiveError as e:
        raise ImageError(f"image {ref!r}: {e}") from e
