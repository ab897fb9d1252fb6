"""Where a container's ``image`` comes from, decided in one place for ``ctrctl check``, the
runtime and the pull before a start.

The order is podman's, where a local image wins over a registry: an absolute path is a path (so
is a relative one that exists, as ``ctrctl run --image ./rootfs`` gives it); a name with a file
under ``DATA_DIR/images`` (the image kinds that came before OCI images: a directory, a tarball,
a file-system image) is that; then the store (``Store.find``: an ID, a full name, or a short
name that any local image answers to); anything else is a reference to pull, short names
through registries.conf. Nothing here reads a registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from supervisor.model.defaults import IMAGE_SUFFIXES
from supervisor.model.spec import PullPolicy

if TYPE_CHECKING:
    from supervisor.images.reference import Reference

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

Kind = Literal["path", "named", "stored", "registry"]


class InvalidImage(ValueError):
    """A value that is neither a path, an image name nor a reference."""


class ImageNotFound(LookupError):
    """An image that is not here and may not (or cannot) be pulled; the message says what was
    looked for."""


@dataclass(frozen=True)
class Located:
    kind: Kind
    value: str  # as the definition wrote it
    path: Path | None = None  # "path", "named": the file or directory
    reference: Reference | None = None  # "stored", "registry"


def locate(value: str, data_dir: Path) -> Located:
    """Which kind of image ``value`` is, with the path or reference it names."""
    if value.startswith("/") or ("/" in value and Path(value).exists()):
        return Located("path", value, path=Path(value))
    named = _NAME.fullmatch(value) is not None
    if named:
        for suffix in IMAGE_SUFFIXES:
            path = data_dir / "images" / f"{value}{suffix}"
            if path.exists():
                return Located("named", value, path=path)
    from supervisor.images import reference  # not for a path: ``ctr-runtime create``

    try:
        ref = reference.parse(value)
    except reference.ReferenceError as e:
        if named:
            raise ImageNotFound(not_found(value, data_dir)) from None
        raise InvalidImage(f"image {value!r}: not an image name (letters, digits, '_.-'), an "
                           f"absolute path or a reference: {e}") from None
    from supervisor.images.store import Store  # not for a path: ``ctr-runtime create``

    if Store(data_dir).find(value) is not None:
        return Located("stored", value, reference=ref)
    return Located("registry", value, reference=ref)


def not_found(value: str, data_dir: Path) -> str:
    """The local places ``value`` was looked for, as an error names them."""
    looked_for = ", ".join(f"{value}{suffix}" for suffix in IMAGE_SUFFIXES)
    where = f"looked for {looked_for} in {data_dir / 'images'}"
    if _is_reference(value):
        from supervisor.images.store import Store

        where += f", and in the image store {Store(data_dir).root}"
    return f"image {value!r} not found: {where}"


def _is_reference(value: str) -> bool:
    from supervisor.images import reference

    try:
        reference.parse(value)
    except reference.ReferenceError:
        return False
    return True


def check(value: str, data_dir: Path) -> Located:
    """``value`` as a definition may name it: a path that exists, a local image, or a reference
    a pull could resolve (a short name needs registries.conf to name one registry for it); the
    image need not be pulled yet."""
    located = locate(value, data_dir)
    if located.kind == "path" and not value.startswith("/"):
        raise InvalidImage(f"image {value!r}: an image path must be absolute")
    if located.kind == "path" and not Path(value).exists():
        raise ImageNotFound(f"image {value!r} not found: {value} does not exist")
    if located.kind == "registry":
        assert located.reference is not None
        from supervisor.images import registries

        try:
            registries.load().candidates(located.reference)
        except (registries.ShortNameError, registries.RegistriesConfError) as e:
            raise ImageNotFound(f"{not_found(value, data_dir)}; and {e}") from None
    return located


def to_pull(located: Located, policy: PullPolicy, by_hand: bool) -> str | None:
    """The reference to pull before a start, as the pull policy says: ``missing`` pulls what the
    store lacks, ``always`` also what it has when the start is by hand (not a restart by the
    restart policy, which must not depend on a registry), ``never`` nothing."""
    if located.kind == "registry":
        if policy == "never":
            raise ImageNotFound(f"image {located.value!r} is not in the image store and its "
                                'pull policy is "never": pull it first (ctrctl pull)')
        return located.value
    if located.kind == "stored" and policy == "always" and by_hand:
        return located.value
    return None
